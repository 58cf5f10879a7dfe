// Package agent is the placeholder agent of the agent container (`slapenir
// agent`, the seed's agent.py): it reports which placeholders (asked of the
// proxy's /placeholders), proxy settings and certificate files it sees,
// checks the proxy's /health, and logs a heartbeat until it is told to stop.
//
// It stands in for the user's agent and must stay that small: it never
// prints more than the first 8 characters of a placeholder, nothing of a
// variable that does not hold its placeholder, and never talks to anything
// but the proxy's /placeholders and /health.
package agent
