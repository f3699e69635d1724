// k8s-validate decodes every object of a multi-document Kubernetes YAML stream (stdin, e.g. the
// output of `helm template`) the way the API server decodes a request with strict field validation:
// into the Go types of k8s.io/api, refusing unknown fields, duplicate fields, wrong types and kinds
// that are not built in. It needs no cluster. One line per object (ok or INVALID with the reason);
// exit status 1 when any object fails. With -json the lines go to stderr and stdout gets each object
// as one line of JSON, for callers without a YAML parser.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

func main() {
	asJSON := flag.Bool("json", false, "print each object as a line of JSON on stdout (reports go to stderr)")
	flag.Parse()
	report := os.Stdout
	if *asJSON {
		report = os.Stderr
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(os.Stdin))
	objects, failures := 0, 0
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "k8s-validate: reading the YAML stream: %v\n", err)
			os.Exit(2)
		}
		// documents holding only comments or whitespace (helm emits them for empty templates)
		var probe map[string]any
		if err := sigsyaml.Unmarshal(doc, &probe); err != nil {
			fmt.Fprintf(report, "INVALID: %v\n", err)
			failures++
			continue
		}
		if len(probe) == 0 {
			continue
		}
		objects++
		name := fmt.Sprintf("%v/%v", probe["kind"], nameOf(probe))
		if _, gvk, err := decoder.Decode(bytes.TrimSpace(doc), nil, nil); err != nil {
			fmt.Fprintf(report, "INVALID %s: %v\n", name, err)
			failures++
		} else {
			fmt.Fprintf(report, "ok %s (%s)\n", name, gvk.GroupVersion())
		}
		if *asJSON {
			line, _ := json.Marshal(probe)
			fmt.Println(string(line))
		}
	}
	if objects == 0 {
		fmt.Fprintln(report, "INVALID: no objects in the input")
		os.Exit(1)
	}
	if failures > 0 {
		os.Exit(1)
	}
}

func nameOf(object map[string]any) any {
	if metadata, ok := object["metadata"].(map[string]any); ok {
		return metadata["name"]
	}
	return nil
}
