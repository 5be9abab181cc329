//go:build race

package htmlinject

const raceEnabled = true
