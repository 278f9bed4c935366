//go:build !(goexperiment.simd && (amd64 || wasm))

package kernels

const simdBuild = false
