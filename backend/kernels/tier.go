package kernels

import (
	"fmt"
	"os"
	"strings"
)

// Tiers: the kernels come in sets (portable Go, AVX2+FMA, AVX-512, WebAssembly SIMD128), each installed by
// setting the package's function variables. One binary holds every set its build tags allow; at start-up the
// best set the CPU supports is installed, unless the environment variable CAST_KERNELS names one:
//
//	CAST_KERNELS=portable|avx2|avx512 (avx512-vnni and wasm-simd128 are accepted too)
//
// A forced tier the CPU (or the build) lacks is not installed: the best supported tier runs instead, and a
// warning goes to standard error and to TierWarning. An unknown name is treated the same way. (A hard error
// would leave a program that reads no configuration with no way to report it; the warning names what runs.)

// tierDef is one set of kernels: its name, whether this CPU can run it, and how to install it.
type tierDef struct {
	name    string
	ok      func() bool
	install func()
}

// tierDefs lists the tiers of this build from slowest to fastest; the architecture files register theirs.
var tierDefs = []tierDef{{name: "portable", ok: func() bool { return true }, install: installPortable}}

// registerTier adds a tier (package-level var initialisers in the architecture files call it).
func registerTier(t tierDef) bool {
	tierDefs = append(tierDefs, t)
	return true
}

var (
	tierName    = "portable"
	tierWarning string
)

func init() {
	tierWarning = selectTier(os.Getenv("CAST_KERNELS"))
	if tierWarning != "" {
		fmt.Fprintln(os.Stderr, "kernels:", tierWarning)
	}
}

// Tier names the set of kernels in use: "portable", "avx2", "avx512", "avx512-vnni" (AVX-512 on a CPU that also
// has AVX-512 VNNI, which the int8 kernels use) or "wasm-simd128".
func Tier() string { return tierName }

// Tiers lists the tiers this build can run on this CPU, slowest first (the last is the default).
func Tiers() []string {
	var names []string
	for _, t := range tierDefs {
		if t.ok() {
			names = append(names, t.name)
		}
	}
	return names
}

// TierWarning is the warning given when CAST_KERNELS named a tier that cannot run here ("" otherwise).
func TierWarning() string { return tierWarning }

// selectTier installs the tier named by want (CAST_KERNELS; "" for the best supported one) and returns a
// warning when it had to install another.
func selectTier(want string) string {
	want = strings.ToLower(strings.TrimSpace(want))
	best := ""
	for _, t := range tierDefs {
		if t.ok() {
			best = t.name
		}
	}
	if want == "" {
		mustSetTier(best)
		return ""
	}
	supported := Tiers()
	for _, name := range supported {
		if tierMatches(name, want) {
			mustSetTier(name)
			return ""
		}
	}
	mustSetTier(best)
	return fmt.Sprintf("CAST_KERNELS=%q is not a tier this build can run on this CPU (it can run %s): using %s",
		want, strings.Join(supported, ", "), best)
}

// tierMatches says whether the CAST_KERNELS value want selects the tier name ("avx512" selects
// "avx512-vnni" too).
func tierMatches(name, want string) bool {
	return name == want || want == "avx512" && name == "avx512-vnni" || want == "wasm" && name == "wasm-simd128"
}

// setTier installs the named tier (tests run every supported tier through it). It fails for a tier this
// build or CPU cannot run. Packed operands (PackB) must be packed again after a change: their panel width
// belongs to the tier.
func setTier(name string) error {
	for _, t := range tierDefs {
		if t.name == name {
			if !t.ok() {
				return fmt.Errorf("kernels: tier %s: not supported by this CPU", name)
			}
			installPortable()
			t.install()
			tierName = name
			for _, h := range tierHooks {
				h(name)
			}
			return nil
		}
	}
	return fmt.Errorf("kernels: no tier %q in this build (it has %s)", name, strings.Join(Tiers(), ", "))
}

func mustSetTier(name string) {
	if err := setTier(name); err != nil {
		panic(err) // unreachable: name comes from Tiers()
	}
}

// installPortable sets every function variable to its portable version; the other tiers start from it.
func installPortable() {
	gemmMR, gemmNR = 4, 4
	microKernel = microGeneric
	stripKernel = nil
	microStrided = nil
	storeTile = storeTileGeneric

	vexp, verf, vlogistic, vtanh = vexpGeneric, verfGeneric, vlogisticGeneric, vtanhGeneric
	vgelu, vquickgelu = vgeluGeneric, vquickgeluGeneric
	vadd, vsub, vmul, vdiv = vaddGeneric, vsubGeneric, vmulGeneric, vdivGeneric
	vaddScalar, vmulScalar = vaddScalarGeneric, vmulScalarGeneric
	vsum, vmax = vsumGeneric, vmaxGeneric
	vexpSubSum, vmeanVar, vnormAffine = vexpSubSumGeneric, vmeanVarGeneric, vnormAffineGeneric

	attnRow, attnRows = attnRowGeneric, attnRowsGeneric
	vsoftmaxGrad, vscaleFlush = softmaxGradGeneric, scaleFlushGeneric
	bwdRow, vsoftmaxGradDot = bwdRowGeneric, softmaxGradDotGeneric
}

// tierHooks run after a tier is installed, with its name: kernels kept in other files (e.g. integer GEMMs)
// choose their versions there (append to it from a package-level var initialiser).
var tierHooks []func(tier string)
