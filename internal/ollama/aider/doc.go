// Package aider holds the logic of the seed's aider-ollama wrapper apart from
// starting the helper and exec'ing: it keeps ~/.aider.model.settings.yml giving
// the model a 16K context without ever clobbering the user's own settings, and
// works out the aider command line and environment (OLLAMA_API_BASE pointing at
// the local Ollama helper).
//
// It must not start processes, open network connections, or touch any file but
// the settings file it is given.
package aider
