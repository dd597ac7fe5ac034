//! The two cryptographic steps of XML Encryption: unwrapping the content key with an SP private
//! key (RSA-OAEP, or RSA PKCS#1 v1.5 with implicit rejection) and decrypting the content
//! (AES-CBC or AES-GCM). Every failure here is the same [`Failed`]: which step failed, and why,
//! is exactly what padding-oracle attacks need to learn (Bleichenbacher 1998 on PKCS#1 v1.5,
//! Manger 2001 on OAEP, Jager and Somorovsky 2011 on XML Encryption's CBC).

use openssl::md::Md;
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{self, Cipher};

use super::key::DecryptionKey;

/// Decryption did not produce a plaintext; deliberately without detail.
#[derive(Debug)]
pub struct Failed;

/// How the content key is wrapped (xmlenc-core1 5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTransport {
    /// RSA-OAEP with the given OAEP digest and MGF1 digest.
    Oaep { digest: Digest, mgf1: Digest },
    /// RSA PKCS#1 v1.5 (only with `allow_rsa_pkcs1_key_transport`).
    Pkcs1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn md(self) -> &'static openssl::md::MdRef {
        match self {
            Digest::Sha1 => Md::sha1(),
            Digest::Sha224 => Md::sha224(),
            Digest::Sha256 => Md::sha256(),
            Digest::Sha384 => Md::sha384(),
            Digest::Sha512 => Md::sha512(),
        }
    }
}

/// The content encryption algorithm (xmlenc-core1 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Cbc { key_len: usize },
    Gcm { key_len: usize },
}

impl Content {
    pub fn key_len(self) -> usize {
        match self {
            Content::Cbc { key_len } | Content::Gcm { key_len } => key_len,
        }
    }

    /// Whether the cipher authenticates the ciphertext itself (a bit flip fails the tag).
    pub fn is_authenticated(self) -> bool {
        matches!(self, Content::Gcm { .. })
    }
}

/// Unwraps a content key of `key_len` bytes with `key`. A PKCS#1 v1.5 padding failure is a
/// [`Failed`] like any other here; the caller turns it into implicit rejection.
pub fn unwrap_key(
    key: &DecryptionKey,
    transport: KeyTransport,
    label: &[u8],
    wrapped: &[u8],
    key_len: usize,
) -> Result<Vec<u8>, Failed> {
    let out = match transport {
        KeyTransport::Oaep { digest, mgf1 } => rsa_decrypt(key, wrapped, |ctx| {
            ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
            ctx.set_rsa_oaep_md(digest.md())?;
            ctx.set_rsa_mgf1_md(mgf1.md())?;
            if !label.is_empty() {
                ctx.set_rsa_oaep_label(label)?;
            }
            Ok(())
        })?,
        KeyTransport::Pkcs1 => rsa_decrypt(key, wrapped, |ctx| ctx.set_rsa_padding(Padding::PKCS1))?,
    };
    if out.len() == key_len {
        Ok(out)
    } else {
        Err(Failed)
    }
}

/// A fresh random content key: what a PKCS#1 v1.5 unwrap that failed continues with (implicit
/// rejection, as TLS does since RFC 5246 7.4.7.1), so that a bad padding and a good one lead
/// through the same steps to the same content failure.
pub fn random_key(key_len: usize) -> Result<Vec<u8>, Failed> {
    let mut random = vec![0u8; key_len];
    openssl::rand::rand_bytes(&mut random).map_err(|_| Failed)?;
    Ok(random)
}

fn rsa_decrypt(
    key: &DecryptionKey,
    wrapped: &[u8],
    configure: impl FnOnce(&mut PkeyCtx<openssl::pkey::Private>) -> Result<(), openssl::error::ErrorStack>,
) -> Result<Vec<u8>, Failed> {
    // A ciphertext of another length than the modulus is not for this key.
    if wrapped.len() != key.key.size() {
        return Err(Failed);
    }
    let mut ctx = PkeyCtx::new(&key.key).map_err(|_| Failed)?;
    ctx.decrypt_init().map_err(|_| Failed)?;
    configure(&mut ctx).map_err(|_| Failed)?;
    let mut out = Vec::new();
    ctx.decrypt_to_vec(wrapped, &mut out).map_err(|_| Failed)?;
    Ok(out)
}

const BLOCK: usize = 16;
const GCM_IV: usize = 12;
const GCM_TAG: usize = 16;

/// Decrypts `data` (IV || ciphertext [|| tag]) with the content key.
pub fn decrypt_content(content: Content, key: &[u8], data: &[u8]) -> Result<Vec<u8>, Failed> {
    if key.len() != content.key_len() {
        return Err(Failed);
    }
    match content {
        Content::Cbc { key_len } => {
            if data.len() < 2 * BLOCK || data.len() % BLOCK != 0 {
                return Err(Failed);
            }
            let cipher = match key_len {
                16 => Cipher::aes_128_cbc(),
                24 => Cipher::aes_192_cbc(),
                _ => Cipher::aes_256_cbc(),
            };
            let (iv, body) = data.split_at(BLOCK);
            let mut crypter = symm::Crypter::new(cipher, symm::Mode::Decrypt, key, Some(iv)).map_err(|_| Failed)?;
            // xmlenc-core1 5.2.1: the padding bytes are arbitrary and only the last byte (the
            // pad length) is meaningful, so OpenSSL's PKCS#7 check would refuse valid input.
            crypter.pad(false);
            let mut out = vec![0u8; body.len() + BLOCK];
            let mut n = crypter.update(body, &mut out).map_err(|_| Failed)?;
            n += crypter.finalize(&mut out[n..]).map_err(|_| Failed)?;
            out.truncate(n);
            let pad = usize::from(*out.last().ok_or(Failed)?);
            if pad == 0 || pad > BLOCK || pad > out.len() {
                return Err(Failed);
            }
            out.truncate(out.len() - pad);
            Ok(out)
        }
        Content::Gcm { key_len } => {
            if data.len() < GCM_IV + GCM_TAG {
                return Err(Failed);
            }
            let cipher = match key_len {
                16 => Cipher::aes_128_gcm(),
                24 => Cipher::aes_192_gcm(),
                _ => Cipher::aes_256_gcm(),
            };
            let (iv, rest) = data.split_at(GCM_IV);
            let (body, tag) = rest.split_at(rest.len() - GCM_TAG);
            symm::decrypt_aead(cipher, key, Some(iv), &[], body, tag).map_err(|_| Failed)
        }
    }
}
