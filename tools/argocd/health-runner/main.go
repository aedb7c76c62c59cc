// Command health-runner evaluates an Argo CD resource health Lua script against Kubernetes
// objects the way Argo CD's controller does for a script configured in argocd-cm:
//   - a fresh gopher-lua state per object, with only the base, package and table libraries
//     (Argo CD opens more only when the customization sets useOpenLibs; it also adds a
//     restricted os library, which this runner leaves out, so a script that needs os fails here);
//   - the live object as the global `obj`, numbers as Lua numbers;
//   - a one-second time limit;
//   - the value the script returns must be a table; its status must be one of the six health
//     codes, or the result is Unknown with Argo CD's "invalid health status" message.
//
// Usage: health-runner SCRIPT.lua < objects.json > results.json, where objects.json is a JSON
// array of objects and results.json the array of {"status", "message"} in the same order. A
// script error is reported per object in "error" rather than failing the whole run.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

var healthCodes = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: health-runner SCRIPT.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	var objects []any
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fail(fmt.Errorf("reading objects from stdin: %w", err))
	}
	results := make([]result, len(objects))
	for i, object := range objects {
		results[i] = evaluate(string(script), object)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "health-runner:", err)
	os.Exit(1)
}

func evaluate(script string, object any) result {
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer state.Close()
	for _, library := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := state.CallByParam(lua.P{Fn: state.NewFunction(library.open), Protect: true}, lua.LString(library.name)); err != nil {
			return result{Error: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	state.SetContext(ctx)
	state.SetGlobal("obj", toLua(state, object))
	if err := state.DoString(script); err != nil {
		return result{Error: err.Error()}
	}
	returned, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		return result{Error: fmt.Sprintf("expected a table from the script, got %s", state.Get(-1).Type())}
	}
	status := lua.LVAsString(returned.RawGetString("status"))
	if !healthCodes[status] {
		return result{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return result{Status: status, Message: lua.LVAsString(returned.RawGetString("message"))}
}

// toLua converts a decoded JSON value the way Argo CD hands an unstructured object to Lua:
// objects and arrays become tables, numbers Lua numbers, null nil.
func toLua(state *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		table := state.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(state, item))
		}
		return table
	case map[string]any:
		table := state.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetString(key, toLua(state, item))
		}
		return table
	}
	return lua.LNil
}
