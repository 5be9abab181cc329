# Sourced by compare.sh, profile.sh and callgrind.sh: the one plugin
# configuration every benchmark measures, so their numbers compare.

# ahp_block prints the site's ahp directive; $1: extra lines (rate_limit …).
ahp_block() {
	cat <<EOF_AHP
	ahp {
		name "Harbor & Pine Furniture Co."
		content /llms.txt
		converse /agent/converse
		content_signals {
			ai_train false
			ai_input true
			search true
		}
		capability site_info {
			mode MODE2
			description "General information about the workshop"
		}
		$1
	}
EOF_AHP
}

# huge: limits no benchmark reaches, so every request is decided and admitted.
huge="static 1000000000/minute
			unauthenticated 1000000000/minute
			authenticated 1000000000/minute"
