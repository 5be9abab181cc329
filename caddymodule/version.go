package caddymodule

import "runtime/debug"

// Version is this plugin's version. Release builds set it here; a build
// that pulls the plugin in as a module dependency (xcaddy) reports the
// module's version instead (see PluginVersion).
const Version = "0.2.0-dev"

// modulePath is this plugin's Go module.
const modulePath = "github.com/caddy-ahp/caddy-ahp"

// PluginVersion is the version `caddy ahp version` prints and the checker
// sends in its User-Agent: the module version the binary was built with
// when the plugin is a dependency (xcaddy build --with
// github.com/caddy-ahp/caddy-ahp@v0.2.0 gives "v0.2.0"), else Version.
func PluginVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path != modulePath {
				continue
			}
			if dep.Replace != nil { // a local replace (xcaddy.sh): the tree's own version
				return Version
			}
			if dep.Version != "" && dep.Version != "(devel)" {
				return dep.Version
			}
		}
	}
	return Version
}
