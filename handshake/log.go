package handshake

import "go.uber.org/zap"

func zapString(k, v string) zap.Field { return zap.String(k, v) }
func zapErr(err error) zap.Field      { return zap.Error(err) }
