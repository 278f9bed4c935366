// Package labels embeds the class names of the datasets CAST was trained on — Something-Something V2
// (174 classes), Kinetics-400 (400) and EPIC-KITCHENS-100 (97 verbs, 300 nouns) — so that the cast
// command can label a converted official checkpoint without any file beside the binary. The lists are
// byte-for-byte copies of the shared label files; SOURCES.md says where each comes from.
package labels

import (
	_ "embed"
	"fmt"
	"strconv"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/modelfile"
)

var (
	//go:embed ssv2.txt
	ssv2Text string
	//go:embed k400.txt
	k400Text string
	//go:embed epic100_verbs.txt
	epicVerbsText string
	//go:embed epic100_nouns.txt
	epicNounsText string
)

// Names of the built-in label lists, as accepted by Builtin.
const (
	SSv2      = "ssv2"
	K400      = "k400"
	EPICVerbs = "epic100_verbs"
	EPICNouns = "epic100_nouns"
)

// Builtin returns a fresh copy of the built-in list called name (SSv2, K400, EPICVerbs or EPICNouns).
func Builtin(name string) ([]string, error) {
	var text string
	switch name {
	case SSv2:
		text = ssv2Text
	case K400:
		text = k400Text
	case EPICVerbs:
		text = epicVerbsText
	case EPICNouns:
		text = epicNounsText
	default:
		return nil, fmt.Errorf("labels: no built-in list %q (have %s, %s, %s, %s)", name, SSv2, K400, EPICVerbs, EPICNouns)
	}
	names, err := modelfile.ParseLabels(text)
	if err != nil {
		return nil, fmt.Errorf("labels: built-in list %s: %w", name, err)
	}
	return names, nil
}

// mustBuiltin returns a built-in list; the embedded files are checked by the package tests.
func mustBuiltin(name string) []string {
	names, err := Builtin(name)
	if err != nil {
		panic(err)
	}
	return names
}

// ForConfig chooses the built-in class names for cfg's heads by class count: a single head of 174
// classes gets the SSv2 list and one of 400 the Kinetics-400 list; an EPIC (composition) model gets the
// EPIC-KITCHENS-100 lists when its noun head has 300 classes and its verb head 97. The second result is
// false when some head has no built-in list of its size; that head then gets Generic names.
func ForConfig(cfg cast.Config) (map[string][]string, bool) {
	out := map[string][]string{}
	ok := true
	pick := func(head string, n int, candidates map[int]string) {
		if name, found := candidates[n]; found {
			out[head] = mustBuiltin(name)
			return
		}
		out[head] = Generic(n)
		ok = false
	}
	if cfg.Composition {
		pick("noun", cfg.NounClasses, map[int]string{300: EPICNouns})
		pick("verb", cfg.VerbClasses, map[int]string{97: EPICVerbs})
		return out, ok
	}
	pick("logits", cfg.NumClasses, map[int]string{174: SSv2, 400: K400})
	return out, ok
}

// Generic returns the placeholder names "class 0" … "class n-1".
func Generic(n int) []string {
	out := make([]string, max(n, 0))
	for i := range out {
		out[i] = "class " + strconv.Itoa(i)
	}
	return out
}
