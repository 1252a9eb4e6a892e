// OpenSSL 3.0's libcrypto (Debian libssl-dev): the EVP digest interface, for SHA-256, and the version string.
#include <openssl/crypto.h>
#include <openssl/evp.h>
