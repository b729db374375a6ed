#ifndef APPLIANCE_COPENSSL_SHIM_H
#define APPLIANCE_COPENSSL_SHIM_H

// Umbrella header for OpenSSL 3 as seen from Swift. Swift cannot import function-like macros or call
// variadic C functions, so the few of those that ApplianceCrypto needs are wrapped in static inline shims.

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/// EVP_EC_gen() is a macro over the variadic EVP_PKEY_Q_keygen().
static inline EVP_PKEY *shim_EVP_EC_gen_P256(void) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/// BIO_get_mem_data() is a macro over BIO_ctrl().
static inline long shim_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

/// The AEAD tag controls are macros (EVP_CTRL_AEAD_* alias the GCM constants).
static inline int shim_EVP_CIPHER_CTX_get_aead_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag, int length) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, length, tag);
}

static inline int shim_EVP_CIPHER_CTX_set_aead_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag, int length) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, length, tag);
}

/// OSSL_PARAM keeps the key-name pointer, so names must outlive the call that builds the parameter; Swift string
/// arguments are temporaries. These use OpenSSL's own static name constants instead.
static inline OSSL_PARAM shim_OSSL_PARAM_kdf_digest_sha256(void) {
    return OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
}

static inline OSSL_PARAM shim_OSSL_PARAM_kdf_key(unsigned char *key, size_t length) {
    return OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, length);
}

static inline OSSL_PARAM shim_OSSL_PARAM_kdf_salt(unsigned char *salt, size_t length) {
    return OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, length);
}

static inline OSSL_PARAM shim_OSSL_PARAM_kdf_info(unsigned char *info, size_t length) {
    return OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, length);
}

/// The typed STACK_OF(GENERAL_NAME) accessors are macros.
static inline GENERAL_NAMES *shim_GENERAL_NAMES_new_null(void) {
    return sk_GENERAL_NAME_new_null();
}

static inline int shim_GENERAL_NAMES_push(GENERAL_NAMES *names, GENERAL_NAME *name) {
    return sk_GENERAL_NAME_push(names, name);
}

/// MBSTRING_UTF8 is defined in terms of another macro, which Swift does not import reliably.
static inline int shim_MBSTRING_UTF8(void) {
    return MBSTRING_UTF8;
}

#endif
