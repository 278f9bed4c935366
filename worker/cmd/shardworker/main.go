// Command shardworker is the edge worker of a sharded model (package shard), built with GOOS=js
// GOARCH=wasm (worker/shard-build.sh) and run in workerd as one of two roles, chosen by the ROLE variable:
//
//   - ROLE=stage, STAGE_INDEX=I: a stage worker (package stage). It reads the manifest and its stage file
//     once per isolate, from the MODEL_BUCKET R2 binding (production) or the SHARDS service binding
//     (workerd's disk service, ./build.sh edge-serve), under the key prefix SHARD_PREFIX; checks the
//     file against the manifest; keeps only the loaded weights; and runs its stage per view.
//   - ROLE=coordinator: the POST /v1/classify API of package edge, whose model is a chain (package chain)
//     of the stage workers bound as STAGE_0, STAGE_1, …; STAGE_TIMEOUT_MS bounds one stage request and
//     VIEW_PARALLELISM the views in flight (default 2), MAX_STAGE_REQUESTS views × stages per request.
//
// Natively it only explains this.
package main
