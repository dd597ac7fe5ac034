// chart-render renders a Helm chart the way `helm template` does, for the subset of Helm that
// the saml-validator chart uses, so CI can check the chart where Helm itself is not installable
// (not packaged for Debian 12, and no network but package registries).
//
//	chart-render [-f override.yaml] [-release NAME] [-namespace NS] CHART_DIR OUT_DIR
//
// What it mirrors from Helm 3:
//   - values: values.yaml with the override coalesced over it (maps merge, lists and scalars
//     replace, null deletes a key), decoded like Helm does (through JSON, so every number is a
//     float64 in templates: integers need `int64` before printing, exactly as in real Helm);
//   - values.schema.json validated against the merged values before rendering (Helm < 3.18
//     used this same library, xeipuuv/gojsonschema);
//   - text/template + sprig, minus env/expandenv, plus include, tpl, required, toYaml, fromYaml;
//   - .Values .Release (Name Namespace Service IsInstall IsUpgrade Revision) .Chart (Name
//     Version AppVersion Description Type) .Template (Name BasePath);
//   - missing keys render as "" (Helm's non-strict mode); files under templates/ starting with
//     "_" are helpers only; whitespace-only output is not written; NOTES.txt is rendered too.
//
// Not implemented (the chart must not use them): .Files, .Capabilities, lookup, subcharts.
// Each manifest is re-parsed as YAML and must carry apiVersion and kind, as `helm install`
// would require; any problem exits non-zero.
//
// Build offline against Debian's Go packages (GOPATH mode, no module download):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o chart-render tools/chart-render/main.go
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig" // Debian ships v3 at this GOPATH path
	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

func main() {
	override := flag.String("f", "", "values file coalesced over the chart's values.yaml")
	release := flag.String("release", "saml-validator", "release name (.Release.Name)")
	namespace := flag.String("namespace", "default", "release namespace (.Release.Namespace)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [-f values.yaml] [-release NAME] [-namespace NS] CHART_DIR OUT_DIR\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *override, *release, *namespace); err != nil {
		fmt.Fprintf(os.Stderr, "chart-render: %v\n", err)
		os.Exit(1)
	}
}

func run(chartDir, outDir, overridePath, release, namespace string) error {
	chartMeta, err := readYAMLFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	meta, _ := chartMeta.(map[string]interface{})
	chartName, _ := meta["name"].(string)
	if chartName == "" {
		return errors.New("Chart.yaml: name is required")
	}
	valuesDoc, err := readYAMLFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	values := asMap(valuesDoc)
	if overridePath != "" {
		over, err := readYAMLFile(overridePath)
		if err != nil {
			return err
		}
		values = coalesce(values, asMap(over))
	}
	if err := validateSchema(filepath.Join(chartDir, "values.schema.json"), values); err != nil {
		return err
	}

	basePath := chartName + "/templates"
	data := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart": map[string]interface{}{
			"Name": chartName, "Version": meta["version"], "AppVersion": meta["appVersion"],
			"Description": meta["description"], "Type": meta["type"],
		},
	}

	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	root := template.New("chart")
	root.Option("missingkey=zero")
	root.Funcs(funcMap(root))
	var outputs []string
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		name := basePath + "/" + filepath.Base(file)
		if _, err := root.New(name).Parse(string(text)); err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		if !strings.HasPrefix(filepath.Base(file), "_") {
			outputs = append(outputs, name)
		}
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	for _, name := range outputs {
		// Each template sees its own .Template, as in Helm.
		scoped := map[string]interface{}{}
		for k, v := range data {
			scoped[k] = v
		}
		scoped["Template"] = map[string]interface{}{"Name": name, "BasePath": basePath}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, scoped); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(out) == "" {
			continue // Helm skips templates that render to nothing (disabled features)
		}
		base := filepath.Base(name)
		if base != "NOTES.txt" {
			if err := checkManifest(name, out); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(outDir, base), []byte("# Source: "+name+"\n"+out), 0o644); err != nil {
			return err
		}
		fmt.Printf("rendered %s\n", name)
	}
	return nil
}

// funcMap is sprig's text functions with Helm's additions and removals.
func funcMap(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env") // Helm removes these: a chart must not depend on the machine rendering it
	delete(f, "expandenv")
	f["toYaml"] = toYaml
	f["fromYaml"] = func(s string) map[string]interface{} {
		var v interface{}
		if err := yaml.Unmarshal([]byte(s), &v); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return asMap(normalize(v))
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		if _, err := t.New("tpl").Parse(text); err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "tpl", data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

// toYaml matches Helm's (sigs.k8s.io/yaml): marshal through JSON so float64 integers print as
// integers, keys sorted, trailing newline trimmed.
func toYaml(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var generic interface{}
	if err := yaml.Unmarshal(j, &generic); err != nil {
		return ""
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// checkManifest re-parses a rendered manifest: every YAML document must parse and, unless
// empty, be a Kubernetes object with apiVersion, kind and metadata.name.
func checkManifest(name, text string) error {
	dec := yaml.NewDecoder(strings.NewReader(text))
	for i := 0; ; i++ {
		var doc interface{}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d is not valid YAML: %w", name, i, err)
		}
		if doc == nil {
			continue
		}
		m, ok := doc.(map[string]interface{})
		if !ok {
			return fmt.Errorf("%s: document %d is not a mapping", name, i)
		}
		for _, key := range []string{"apiVersion", "kind"} {
			if s, _ := m[key].(string); s == "" {
				return fmt.Errorf("%s: document %d has no %s", name, i, key)
			}
		}
		if md, _ := m["metadata"].(map[string]interface{}); md == nil || md["name"] == nil {
			return fmt.Errorf("%s: document %d has no metadata.name", name, i)
		}
	}
}

func validateSchema(path string, values map[string]interface{}) error {
	schema, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // like Helm: no schema, no validation
	}
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewGoLoader(values))
	if err != nil {
		return fmt.Errorf("values.schema.json: %w", err)
	}
	if result.Valid() {
		return nil
	}
	var b strings.Builder
	b.WriteString("values don't meet the specifications of the schema(s):")
	for _, e := range result.Errors() {
		fmt.Fprintf(&b, "\n- %s", e)
	}
	return errors.New(b.String())
}

func readYAMLFile(path string) (interface{}, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v interface{}
	if err := yaml.Unmarshal(text, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return normalize(v), nil
}

// normalize round-trips through JSON, as Helm's values loading does (sigs.k8s.io/yaml), so
// templates and the schema see the same types Helm gives them (numbers are float64).
func normalize(v interface{}) interface{} {
	j, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out interface{}
	if err := json.Unmarshal(j, &out); err != nil {
		return v
	}
	return out
}

func asMap(v interface{}) map[string]interface{} {
	if m, ok := v.(map[string]interface{}); ok {
		return m
	}
	return map[string]interface{}{}
}

// coalesce returns base with over merged in, Helm style.
func coalesce(base, over map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, baseIsMap := out[k].(map[string]interface{})
		om, overIsMap := v.(map[string]interface{})
		if baseIsMap && overIsMap {
			out[k] = coalesce(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}
