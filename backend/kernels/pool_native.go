//go:build !(js || wasip1)

package kernels

const singleThreaded = false
