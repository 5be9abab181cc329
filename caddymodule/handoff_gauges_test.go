package caddymodule

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A configuration that is refused (caddy reload with an error) must leave
// the running site's metrics alone. agent_handoff's Provision sets the
// zone's difficulty and velocity gauges before it has checked the rest of
// the configuration, so a refused reload publishes its own difficulty for
// the running zone.
func TestRefusedReloadLeavesHandoffGauges(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	running := AgentHandoff{Provider: &HandoffProvider{Name: "Gauge FAQ"}, Difficulty: &HandoffDifficulty{Base: 20, Ceiling: 28}}
	if err := running.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer running.Cleanup()
	g := handoffMetricsSet.difficulty.WithLabelValues("Gauge FAQ")
	if v := gaugeValue(g); v != 20 {
		t.Fatalf("difficulty gauge %v, want 20", v)
	}

	// The operator tries a new difficulty with a typo elsewhere: the reload
	// is refused and the running configuration (base 20) stays.
	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	refused := AgentHandoff{Provider: &HandoffProvider{Name: "Gauge FAQ"}, Difficulty: &HandoffDifficulty{Base: 26, Ceiling: 28}, ExchangePage: "/no/such/exchange.html"}
	err := refused.Provision(ctx2)
	refused.Cleanup()
	cancel2()
	if err == nil {
		t.Fatal("the broken configuration was accepted")
	}
	if v := gaugeValue(g); v != 20 {
		t.Errorf("after a refused reload the running zone's caddy_ahp_handoff_difficulty is %v, want 20 (the refused config's base leaked into the running site's metrics)", v)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}

// A zone the running configuration no longer has (the provider renamed,
// the agent_handoff block removed) keeps exporting its last difficulty
// and velocity forever: Cleanup never deletes the zone's gauge series.
func TestRemovedZoneDropsHandoffGauges(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	old := AgentHandoff{Provider: &HandoffProvider{Name: "Renamed FAQ"}, Difficulty: &HandoffDifficulty{Base: 22, Ceiling: 28}}
	if err := old.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	// The reload: the new configuration names the provider differently.
	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel2()
	cur := AgentHandoff{Provider: &HandoffProvider{Name: "Current FAQ"}}
	if err := cur.Provision(ctx2); err != nil {
		t.Fatal(err)
	}
	defer cur.Cleanup()
	old.Cleanup()
	cancel()

	mfs, err := ctx2.GetMetricsRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "caddy_ahp_handoff_difficulty" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "site" && l.GetValue() == "Renamed FAQ" {
					t.Errorf("the running configuration's /metrics still exports caddy_ahp_handoff_difficulty{site=\"Renamed FAQ\"} = %v for a zone no configuration has", m.GetGauge().GetValue())
				}
			}
		}
	}
}

// A successful reload keeps the zone's store, and with it the velocity it
// counts: the gauges keep what the running handler last set rather than
// dropping to the provisioning defaults.
func TestReloadKeepsHandoffGauges(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	old := AgentHandoff{Provider: &HandoffProvider{Name: "Kept FAQ"}}
	if err := old.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	o := newHandoffObserver(handoffMetricsSet, "Kept FAQ", handoffRoleAPI)
	o.holdGaugesFor(handoffMetricsSet, "Kept FAQ")
	o.Velocity(7, 23)
	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel2()
	cur := AgentHandoff{Provider: &HandoffProvider{Name: "Kept FAQ"}}
	if err := cur.Provision(ctx2); err != nil {
		t.Fatal(err)
	}
	defer cur.Cleanup()
	old.Cleanup()
	cancel()
	if v := gaugeValue(handoffMetricsSet.velocity.WithLabelValues("Kept FAQ")); v != 7 {
		t.Errorf("velocity after a reload %v, want 7 (the kept store's count)", v)
	}
	if v := gaugeValue(handoffMetricsSet.difficulty.WithLabelValues("Kept FAQ")); v != 23 {
		t.Errorf("difficulty after a reload %v, want 23", v)
	}
}

// Each site exports the series its role can move: a preview or content
// site never admits, so it has no admissions, claims, challenges or
// difficulty series (they were exported at 0); the API site has them.
func TestHandoffSeriesByRole(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	sites := []*AgentHandoff{
		{Provider: &HandoffProvider{Name: "Role API"}},
		{Mode: handoffModePreview, Zone: "Role Preview"},
		{Mode: handoffModeContent, Zone: "Role Content"},
	}
	for _, a := range sites {
		if err := a.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		defer a.Cleanup()
	}
	mfs, err := ctx.GetMetricsRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]map[string]bool{} // site → metric names
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "site" {
					if has[l.GetValue()] == nil {
						has[l.GetValue()] = map[string]bool{}
					}
					has[l.GetValue()][mf.GetName()] = true
				}
			}
		}
	}
	apiOnly := []string{"caddy_ahp_handoff_admissions_total", "caddy_ahp_handoff_claims_total", "caddy_ahp_handoff_challenges_issued_total", "caddy_ahp_handoff_difficulty", "caddy_ahp_handoff_velocity"}
	for _, name := range apiOnly {
		if !has["Role API"][name] {
			t.Errorf("the API site has no %s", name)
		}
		for _, site := range []string{"Role Preview", "Role Content"} {
			if has[site][name] {
				t.Errorf("%s exports %s, which its role never moves", site, name)
			}
		}
	}
	if !has["Role Preview"]["caddy_ahp_handoff_uniform_failures_total"] {
		t.Errorf("the preview site has no uniform_failures_total: %v", has["Role Preview"])
	}
}
