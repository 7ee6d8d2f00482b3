// validate-bundle: the OLM bundle checks of `operator-sdk bundle validate <dir>
// --select-optional suite=operatorframework`, from the same library (github.com/operator-framework/api),
// without operator-sdk's container tooling. A test tool: scripts/build-bundle-validator.sh builds it
// into the test cache and test/bundle/bundle.test.ts runs it on bundle/.
//
//	validate-bundle [-k8s-version 1.36] <bundle dir>
//
// Prints one JSON object {"errors": [...], "warnings": [...]} and exits 1 when either is non-empty
// (2 when the bundle cannot be read).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	apierrors "github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	"sigs.k8s.io/yaml"
)

type finding struct {
	Validator string `json:"validator"`
	Object    string `json:"object"`
	Type      string `json:"type"`
	Field     string `json:"field,omitempty"`
	Detail    string `json:"detail"`
}

type report struct {
	Errors   []finding `json:"errors"`
	Warnings []finding `json:"warnings"`
}

func (r *report) add(validator string, results []apierrors.ManifestResult) {
	for _, res := range results {
		for _, e := range res.Errors {
			r.Errors = append(r.Errors, finding{validator, res.Name, string(e.Type), e.Field, e.Detail})
		}
		for _, w := range res.Warnings {
			r.Warnings = append(r.Warnings, finding{validator, res.Name, string(w.Type), w.Field, w.Detail})
		}
	}
}

// The metadata checks of operator-registry's ValidateBundleFormat (which operator-sdk runs first):
// annotations.yaml names the media type, both folders and the package, and its default channel is
// one of its channels.
func formatFindings(dir string) []finding {
	bad := func(detail string) finding {
		return finding{"bundle-format", "metadata/annotations.yaml", "BundleNotValid", "", detail}
	}
	data, err := os.ReadFile(filepath.Join(dir, "metadata", "annotations.yaml"))
	if err != nil {
		return []finding{bad(err.Error())}
	}
	var file struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		return []finding{bad(err.Error())}
	}
	a := file.Annotations
	var out []finding
	want := map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1": "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":  "metadata/",
	}
	for k, v := range want {
		if a[k] != v {
			out = append(out, bad(fmt.Sprintf("%s is %q, want %q", k, a[k], v)))
		}
	}
	if a["operators.operatorframework.io.bundle.package.v1"] == "" {
		out = append(out, bad("operators.operatorframework.io.bundle.package.v1 is missing"))
	}
	channels := strings.Split(a["operators.operatorframework.io.bundle.channels.v1"], ",")
	def := a["operators.operatorframework.io.bundle.channel.default.v1"]
	found := def == ""
	for _, c := range channels {
		if strings.TrimSpace(c) == "" {
			out = append(out, bad("operators.operatorframework.io.bundle.channels.v1 has an empty channel"))
		}
		found = found || c == def
	}
	if !found {
		out = append(out, bad(fmt.Sprintf("default channel %q is not one of the channels %q", def, channels)))
	}
	return out
}

func main() {
	k8sVersion := flag.String("k8s-version", "", "Kubernetes version for the deprecated-API checks (operator-sdk's --optional-values=k8s-version=)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: validate-bundle [-k8s-version 1.36] <bundle dir>")
		os.Exit(2)
	}
	dir := flag.Arg(0)
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "validate-bundle: %v\n", err)
		os.Exit(2)
	}
	r := report{Errors: []finding{}, Warnings: []finding{}}
	r.Errors = append(r.Errors, formatFindings(dir)...)

	// The default validators (operator-sdk bundle validate without options).
	r.add("default", validation.DefaultBundleValidators.Validate(bundle.ObjectsToValidate()...))

	// suite=operatorframework, given every object and the optional values as operator-sdk does.
	objs := bundle.ObjectsToValidate()
	for _, o := range bundle.Objects {
		objs = append(objs, o)
	}
	objs = append(objs, map[string]string{"k8s-version": *k8sVersion})
	optional := []struct {
		name string
		v    interfaces.Validator
	}{
		{"operatorhub", validation.OperatorHubV2Validator},
		{"capabilities", validation.StandardCapabilitiesValidator},
		{"categories", validation.StandardCategoriesValidator},
		{"alpha-deprecated-apis", validation.AlphaDeprecatedAPIsValidator},
		{"good-practices", validation.GoodPracticesValidator},
	}
	for _, o := range optional {
		r.add(o.name, o.v.Validate(objs...))
	}

	out, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(out))
	if len(r.Errors) > 0 || len(r.Warnings) > 0 {
		os.Exit(1)
	}
}
