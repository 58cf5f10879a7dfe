// Package up runs the whole SLAPENIR system on one machine without Docker
// (`slapenir up`): a CA, the proxy with mTLS, Ollama (the real one when it
// answers, else the fake), and an agent environment run by `slapenir init`
// with the default services. As root the agent gets its own network namespace,
// joined to the host by a veth pair and locked down by `slapenir enforce`;
// otherwise the agent's processes run unconfined, and up says so.
//
// It owns the orchestration only: the order things start in, the files that
// wire them together (proxy policy, service file, /etc/netns hosts), what is
// printed, and the teardown that leaves no namespace, veth, rule or process
// behind. It must not re-implement any part it starts: the proxy, the CA
// clients, init and the relay are the same code the containers run.
package up
