//go:build js && wasm

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"syscall/js"
)

// progressFunc is handed to the work of an async function: call it between stages to report progress;
// it yields to the JavaScript event loop so the page can deliver events and repaint.
type progressFunc func(stage string, done, total int)

// errorKey marks the value a sync function returns instead of throwing (see throwShim).
const errorKey = "__castgoError"

// throwShim wraps a Go function so that a returned {__castgoError: Error} is thrown in JavaScript: Go
// cannot throw through syscall/js. It is built with the Function constructor; under a Content Security
// Policy without 'unsafe-eval' that fails and the sync functions return the Error instead of throwing it.
var throwShim = func() js.Value {
	defer func() { _ = recover() }()
	return js.Global().Get("Function").New("impl",
		`return function castgoSync(...args) { const r = impl.apply(this, args); `+
			`if (r !== null && typeof r === "object" && r.`+errorKey+` instanceof Error) throw r.`+errorKey+`; return r; };`)
}()

// jsError makes a JavaScript Error with message msg.
func jsError(msg string) js.Value { return js.Global().Get("Error").New(msg) }

// syncFunc exposes f as a synchronous JavaScript function named castgo.name: its error is thrown as an
// Error whose message starts with "castgo.name: "; a panic becomes such an error too.
func syncFunc(name string, f func(args []js.Value) (any, error)) js.Value {
	fn := js.FuncOf(func(_ js.Value, args []js.Value) (ret any) {
		defer func() {
			if r := recover(); r != nil {
				ret = errorValue(fmt.Errorf("castgo.%s: internal error: %v", name, r))
			}
		}()
		v, err := f(args)
		if err != nil {
			return errorValue(fmt.Errorf("castgo.%s: %w", name, err))
		}
		return v
	})
	if throwShim.Type() != js.TypeFunction {
		return fn.Value
	}
	return throwShim.Invoke(fn)
}

func errorValue(err error) js.Value {
	e := jsError(err.Error())
	if throwShim.Type() != js.TypeFunction {
		return e
	}
	o := js.Global().Get("Object").New()
	o.Set(errorKey, e)
	return o
}

// asyncFunc exposes an asynchronous JavaScript function castgo.name returning a Promise. prepare runs
// synchronously (it validates and copies the arguments, so the caller may reuse its buffers at once) and
// returns the work, which runs in a goroutine after the function has returned; the Promise resolves with
// the work's value or rejects with an Error naming the problem. Panics reject too.
func asyncFunc(name string, prepare func(args []js.Value) (func(progressFunc) (any, error), error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) (ret any) {
		promise := js.Global().Get("Promise")
		defer func() {
			if r := recover(); r != nil {
				ret = promise.Call("reject", jsError(fmt.Sprintf("castgo.%s: internal error: %v", name, r)))
			}
		}()
		work, err := prepare(args)
		if err != nil {
			return promise.Call("reject", jsError(fmt.Sprintf("castgo.%s: %v", name, err)))
		}
		var resolve, reject js.Value
		executor := js.FuncOf(func(_ js.Value, a []js.Value) any {
			resolve, reject = a[0], a[1]
			return nil
		})
		p := promise.New(executor)
		executor.Release()
		go func() {
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(jsError(fmt.Sprintf("castgo.%s: internal error: %v\n%s", name, r, debug.Stack())))
				}
			}()
			yieldToEventLoop() // return the Promise before any heavy work starts
			v, err := work(func(string, int, int) { yieldToEventLoop() })
			if err != nil {
				reject.Invoke(jsError(fmt.Sprintf("castgo.%s: %v", name, err)))
				return
			}
			resolve.Invoke(v)
		}()
		return p
	})
}

// yieldToEventLoop blocks the calling goroutine until a setTimeout(0) callback runs, so the JavaScript
// event loop gets a turn (the Go scheduler returns to JavaScript while every goroutine is blocked).
func yieldToEventLoop() {
	done := make(chan struct{})
	var f js.Func
	f = js.FuncOf(func(js.Value, []js.Value) any {
		f.Release()
		close(done)
		return nil
	})
	js.Global().Call("setTimeout", f, 0)
	<-done
}

// callJS calls the JavaScript function f, turning an exception it throws into an error.
func callJS(f js.Value, args ...any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(js.Error); ok && e.Type() == js.TypeObject {
				err = errors.New(e.Get("message").String())
			} else if ok {
				err = errors.New(e.Value.Call("toString").String())
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	f.Invoke(args...)
	return nil
}

// arg returns args[i], or undefined.
func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

func isNullish(v js.Value) bool { return v.IsUndefined() || v.IsNull() }

// describe names the JavaScript type of v for error messages.
func describe(v js.Value) string {
	switch v.Type() {
	case js.TypeObject:
		if c := v.Get("constructor"); c.Type() == js.TypeFunction {
			if n := c.Get("name").String(); n != "" {
				return n
			}
		}
		return "object"
	case js.TypeString:
		return fmt.Sprintf("string %q", v.String())
	case js.TypeNumber:
		return fmt.Sprintf("number %v", v.Float())
	default:
		return v.Type().String()
	}
}

// intField reads the integer property key of obj; when it is absent, required makes that an error and
// otherwise def is returned.
func intField(obj js.Value, key string, required bool, def int) (int, error) {
	return intValue(obj.Get(key), key, required, def)
}

// intValue reads v, the value called name, as an integer (see intField).
func intValue(v js.Value, name string, required bool, def int) (int, error) {
	if isNullish(v) {
		if required {
			return 0, fmt.Errorf("%s is required", name)
		}
		return def, nil
	}
	if v.Type() != js.TypeNumber {
		return 0, fmt.Errorf("%s must be a number, got %s", name, describe(v))
	}
	f := v.Float()
	if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, fmt.Errorf("%s is %v, want an integer", name, f)
	}
	return int(f), nil
}

// isByteArray reports whether v is a Uint8Array or Uint8ClampedArray.
func isByteArray(v js.Value) bool {
	return v.InstanceOf(js.Global().Get("Uint8Array")) || v.InstanceOf(js.Global().Get("Uint8ClampedArray"))
}

// byteLength returns the byte length of an ArrayBuffer, typed array or DataView without copying it.
func byteLength(v js.Value) (int, error) {
	g := js.Global()
	if !v.InstanceOf(g.Get("ArrayBuffer")) && !g.Get("ArrayBuffer").Call("isView", v).Bool() {
		return 0, fmt.Errorf("want an ArrayBuffer, Uint8Array or Uint8ClampedArray, got %s", describe(v))
	}
	return v.Get("byteLength").Int(), nil
}

// bytesFromJSMax is bytesFromJS for at most max bytes: a longer value is rejected before it is copied.
func bytesFromJSMax(v js.Value, max int) ([]byte, error) {
	n, err := byteLength(v)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d MiB", n, max>>20)
	}
	return bytesFromJS(v)
}

// bytesFromJS copies the bytes of an ArrayBuffer, a Uint8Array / Uint8ClampedArray or any other typed
// array or DataView (its raw bytes) into Go.
func bytesFromJS(v js.Value) ([]byte, error) {
	g := js.Global()
	switch {
	case isByteArray(v):
	case v.InstanceOf(g.Get("ArrayBuffer")):
		v = g.Get("Uint8Array").New(v)
	case g.Get("ArrayBuffer").Call("isView", v).Bool():
		v = g.Get("Uint8Array").New(v.Get("buffer"), v.Get("byteOffset"), v.Get("byteLength"))
	default:
		return nil, fmt.Errorf("want an ArrayBuffer, Uint8Array or Uint8ClampedArray, got %s", describe(v))
	}
	b := make([]byte, v.Length())
	js.CopyBytesToGo(b, v)
	return b, nil
}

// toJS converts a Go value to a plain JavaScript value through JSON.
func toJS(v any) (js.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return js.Undefined(), fmt.Errorf("encoding the result: %w", err)
	}
	return js.Global().Get("JSON").Call("parse", string(b)), nil
}
