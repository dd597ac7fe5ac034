//! A minimal gRPC caller, as a help-desk backend would write one:
//! `cargo run --example grpc_client -- http://127.0.0.1:9090 contoso response.b64 [request-id]`
//! (the file holds the SAMLResponse form field exactly as the browser posted it).

use saml_validator::transport::grpc::pb::saml_validator_client::SamlValidatorClient;
use saml_validator::transport::grpc::pb::ValidateRequest;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, tenant, file, rest @ ..] = args.as_slice() else {
        eprintln!("usage: grpc_client ENDPOINT TENANT FILE [EXPECTED_REQUEST_ID]");
        std::process::exit(2);
    };
    let saml_response = std::fs::read_to_string(file)?;
    let mut client = SamlValidatorClient::connect(endpoint.clone()).await?;
    let request = ValidateRequest {
        tenant: tenant.clone(),
        saml_response: saml_response.trim().to_string(),
        expected_request_id: rest.first().cloned(),
        expected_acs_url: None,
    };
    match client.validate(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            if reply.valid {
                let subject = reply.subject.unwrap_or_default();
                let claims = reply.claims.unwrap_or_default();
                println!(
                    "valid: {} <{}> groups={}",
                    subject.name_id,
                    claims.email.unwrap_or_default(),
                    claims.groups.len()
                );
            } else {
                let error = reply.error.unwrap_or_default();
                println!("rejected: {} ({})", error.code, error.message);
                std::process::exit(1);
            }
        }
        Err(status) => {
            let code = status.metadata().get("x-error-code").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
            eprintln!("request error: {:?} {code}: {}", status.code(), status.message());
            std::process::exit(2);
        }
    }
    Ok(())
}
