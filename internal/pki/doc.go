// Package pki is the root of SLAPENIR's certificate code. It holds no code of
// its own; each idea lives in a subpackage:
//
//   - certfile: reading, writing (atomically) and describing PEM files;
//   - token: minting and reading step-ca one-time tokens (JWK provisioner);
//   - stepca: the HTTP client for step-ca's /root, /sign, /renew, /provisioners;
//   - enroll: the bootstrap and renewal decisions built on stepca and certfile;
//   - devca: the embedded development CA the proxy uses when no CA is configured;
//   - reload: TLS configs whose certificates and CA pools follow files on disk,
//     client verification with refusal reasons, identities and their globs;
//
// None of these packages serves traffic or knows about the proxy's policy.
package pki
