package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/herd-cluster/herd/internal/envvar"
)

// workerEnv lists the HERD_ variables that are not flags: herd sets them in
// workers' environments (a herd may run inside another herd's worker), so
// they are not mistaken for misspelt flags. HERD_IPC and HERD_CLUSTER_* are
// named by SPEC.md §3 and §5. HERD_CLUSTER_TOTAL is also --cluster-total's.
var workerEnv = map[string]bool{
	envvar.WorkerID:     true,
	envvar.WorkerCount:  true,
	envvar.Generation:   true,
	envvar.PrimaryPID:   true,
	envvar.Port:         true,
	envvar.Shim:         true,
	envvar.IPC:          true,
	envvar.ClusterIndex: true,
	envvar.ClusterTotal: true,
	envvar.ClusterEpoch: true,
}

// envName returns the environment variable of a flag: HERD_READY_TIMEOUT
// for ready-timeout.
func envName(flag string) string {
	return envvar.ConfigPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagName returns the flag an environment variable would belong to:
// ready-timeout for HERD_READY_TIMEOUT.
func flagName(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, envvar.ConfigPrefix), "_", "-"))
}

// checkEnviron refuses HERD_ variables in environ that are neither a
// cluster flag's nor one herd gives its workers.
func checkEnviron(fs *pflag.FlagSet, environ []string) error {
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, envvar.ConfigPrefix) || workerEnv[k] || k == envvar.Name {
			continue
		}
		if name := flagName(k); !isClusterFlag(fs.Lookup(name)) {
			return usageErrorf("environment variable %s: unknown (there is no --%s flag)", k, name)
		}
	}
	return nil
}

// outerEnv lists the flags' variables that a herd primary also sets in its
// workers' environment, for itself: inside a herd worker they describe the
// outer cluster, not the one being started.
var outerEnv = map[string]bool{
	envvar.Name:         true, // --name
	envvar.ClusterTotal: true, // --cluster-total
}

// applyEnv sets fl from its HERD_ variable when that is set and not empty,
// and reports whether it did. List flags take comma-separated items.
// The outerEnv variables are ignored inside a herd worker.
func applyEnv(fl *pflag.Flag) (bool, error) {
	env := envName(fl.Name)
	val, ok := os.LookupEnv(env)
	if !ok || val == "" {
		return false, nil
	}
	if outerEnv[env] && os.Getenv(envvar.WorkerID) != "" {
		return false, nil
	}
	var items []string
	switch v := fl.Value.(type) {
	case interface{ splitEnv(string) []string }:
		items = v.splitEnv(val)
	case pflag.SliceValue:
		items = strings.Split(val, ",")
	default:
		items = []string{val}
	}
	if bad, err := setValues(fl, items); err != nil {
		return false, usageErrorf("environment variable %s (--%s): invalid value %q: %w", env, fl.Name, bad, err)
	}
	return true, nil
}

// setValues gives fl the items through its Value, replacing what it held.
// On error it returns the item at fault.
func setValues(fl *pflag.Flag, items []string) (string, error) {
	sv, ok := fl.Value.(pflag.SliceValue)
	if !ok {
		if len(items) != 1 {
			return strings.Join(items, ","), errors.New("takes one value, not a list")
		}
		return items[0], fl.Value.Set(items[0])
	}
	if err := sv.Replace(nil); err != nil {
		return "", err
	}
	for _, s := range items {
		if err := sv.Append(s); err != nil {
			return s, err
		}
	}
	return "", nil
}

// fileConfig is a parsed config file: values per flag name, the command,
// and the line of each key for messages.
type fileConfig struct {
	path    string
	values  map[string][]string
	lines   map[string]int
	command []string
}

// where returns "FILE:LINE" of key, or "" when the file lacks it.
func (c *fileConfig) where(key string) string {
	if line, ok := c.lines[key]; ok {
		return fmt.Sprintf("%s:%d", c.path, line)
	}
	return ""
}

// apply sets fl from the file if the file has its key.
func (c *fileConfig) apply(fl *pflag.Flag) error {
	items, ok := c.values[fl.Name]
	if !ok {
		return nil
	}
	if bad, err := setValues(fl, items); err != nil {
		return usageErrorf("%s: %s: invalid value %q: %w", c.where(fl.Name), fl.Name, bad, err)
	}
	return nil
}

// loadFile reads the YAML config file at path (none when path is empty):
// a mapping with one key per cluster flag, plus command. Unknown keys,
// duplicates and values that are not scalars or lists of scalars are
// errors.
func loadFile(path string, fs *pflag.FlagSet) (*fileConfig, error) {
	c := &fileConfig{path: path, values: map[string][]string{}, lines: map[string]int{}}
	if path == "" {
		return c, nil
	}
	data, err := readConfigFile(path)
	if err != nil {
		return nil, usageErrorf("config file %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, usageErrorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return c, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, usageErrorf("config file %s: want a mapping of flag names to values, such as workers: 4", path)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if err := c.add(root.Content[i], root.Content[i+1], fs); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// maxConfigSize is the largest config file herd reads.
const maxConfigSize = 1 << 20

// readConfigFile reads path, which must be a regular file of at most
// maxConfigSize bytes. It is opened without blocking, so a FIFO named
// in its place cannot hang herd, and read through a limit, so a file that
// grows or a /proc file that claims a size of 0 cannot pass the bound.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode()))
	case fi.Size() > maxConfigSize:
		return nil, fmt.Errorf("%d bytes, the limit is %d (1 MiB)", fi.Size(), maxConfigSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	switch {
	case err != nil:
		return nil, err
	case len(data) > maxConfigSize:
		return nil, fmt.Errorf("more than %d bytes (1 MiB)", maxConfigSize)
	}
	return data, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// add records one key: value pair of the file.
func (c *fileConfig) add(k, v *yaml.Node, fs *pflag.FlagSet) error {
	key, at := k.Value, fmt.Sprintf("%s:%d", c.path, k.Line)
	if _, dup := c.lines[key]; dup {
		return usageErrorf("%s: %s: given twice", at, key)
	}
	if fl := fs.Lookup(key); key != "command" && (!isClusterFlag(fl) || key == "config") {
		return usageErrorf("%s: unknown key %q (keys are the flag names of herd run, and command)", at, key)
	}
	items, err := nodeStrings(v)
	if err != nil {
		return usageErrorf("%s: %s: %w", at, key, err)
	}
	c.lines[key] = k.Line
	if key != "command" {
		c.values[key] = items
		return nil
	}
	if len(items) == 0 || items[0] == "" {
		return usageErrorf("%s: command: empty", at)
	}
	if v.Kind == yaml.ScalarNode && strings.ContainsAny(items[0], " \t") {
		return usageErrorf("%s: command: %q must be a list of arguments, such as [./server, --port, \"8080\"]", at, items[0])
	}
	c.command = items
	return nil
}

// nodeStrings returns a scalar as one item and a list of scalars as its
// items.
func nodeStrings(n *yaml.Node) ([]string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil, errors.New("no value")
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}, nil
	case n.Kind != yaml.SequenceNode:
		return nil, errors.New("want a value or a list of values")
	}
	items := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			return nil, fmt.Errorf("line %d: list items must be plain values", item.Line)
		}
		items = append(items, item.Value)
	}
	return items, nil
}
