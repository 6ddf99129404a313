/**
 * A self-signed test certificate for `localhost` / `127.0.0.1` (P-256, valid until 2126), for
 * specs of the `ssl` option. Test-only: the key is public, never use it for anything real.
 */

/** PEM private key of {@link TEST_CERT}. */
export const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOf6J9S6goyb1zAg0
tQ0bEe/DyUDK9PPJEs8S6o6TOp6hRANCAAT+PIBUKdZ4WdpNN6gh1iAOgaL2ajRH
EYs776/xRV10aCMqoxD/EykI6oU6V+q4NGgg1HiLSOjMntTOFr63rfbv
-----END PRIVATE KEY-----
`;

/** PEM self-signed certificate; pass it as `ca` to trust it from a client. */
export const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUP2wmAxesvAp3Ra7qxUDVj9VFpdAwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNjE2MDQ1M1oYDzIxMjYxMTAy
MTYwNDUzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAT+PIBUKdZ4WdpNN6gh1iAOgaL2ajRHEYs776/xRV10aCMqoxD/EykI
6oU6V+q4NGgg1HiLSOjMntTOFr63rfbvo28wbTAdBgNVHQ4EFgQUjmDaEf6QH+4T
V7d6fqDdgDKsfF8wHwYDVR0jBBgwFoAUjmDaEf6QH+4TV7d6fqDdgDKsfF8wDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDSAAwRQIhAP3jIExzFqOejrL8aNCL/TA+QUt+aVqMstFjAy5N5I2KAiBW
6dIJOI74KahXwXg1aCyFnFNRDOxqfxL0fy3rrEH87Q==
-----END CERTIFICATE-----
`;
