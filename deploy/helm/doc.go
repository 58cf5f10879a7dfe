// Package helm holds the tests of the Kubernetes chart in slapenir/: it is
// rendered with the real helm for each values file in values/, and every
// object is decoded strictly into its k8s.io/api type and checked for what
// the chart promises (who may reach whom, who holds which secret, probes,
// non-root containers). It has no code of its own.
package helm
