// Runs an Argo CD resource health script under gopher-lua, the Lua VM Argo CD embeds, so the
// tests of deploy/argocd/health.lua exercise the same interpreter and sandbox.
module hpc-user-operator/test/argocd/health-runner

go 1.26.0

require github.com/yuin/gopher-lua v1.1.2
