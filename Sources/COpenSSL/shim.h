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
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>
#include <string.h>

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

/// EVP_RSA_gen() is a macro over the variadic EVP_PKEY_Q_keygen().
static inline EVP_PKEY *shim_EVP_RSA_gen(unsigned int bits) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

/// OPENSSL_free() is a macro that passes the caller's file and line.
static inline void shim_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

/// ERR_GET_LIB/ERR_GET_REASON are macros. True when the most recent error is PEM's "no start line", which is how
/// PEM_read_bio() reports the end of the input (and how it reports input with no PEM block at all).
static inline int shim_ERR_last_is_pem_no_start_line(void) {
    unsigned long error = ERR_peek_last_error();
    return error != 0 && ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
}

/// Where the PEM passphrase callback takes the passphrase from. `passphrase` is NULL when the caller gave none;
/// the callback sets `requested` so the caller can tell "the key is encrypted" from "the key is damaged".
typedef struct {
    const char *passphrase;
    int length;
    int requested;
} shim_passphrase_source;

/// A pem_password_cb that never prompts: it answers from the shim_passphrase_source in `userdata`, or fails.
static inline int shim_passphrase_callback(char *buffer, int size, int rwflag, void *userdata) {
    (void)rwflag;
    shim_passphrase_source *source = (shim_passphrase_source *)userdata;
    if (source == NULL) {
        return -1;
    }
    source->requested = 1;
    if (source->passphrase == NULL || source->length <= 0 || source->length > size) {
        return -1;
    }
    memcpy(buffer, source->passphrase, (size_t)source->length);
    return source->length;
}

/// PEM_read_bio_PrivateKey() with the non-prompting callback (a NULL callback would prompt on the terminal).
static inline EVP_PKEY *shim_PEM_read_bio_PrivateKey(BIO *bio, shim_passphrase_source *source) {
    return PEM_read_bio_PrivateKey(bio, NULL, shim_passphrase_callback, source);
}

/// The one-line name format of `openssl x509 -subject` ("CN = example, O = Org"), with UTF-8 kept as UTF-8.
static inline unsigned long shim_XN_FLAG_ONELINE_UTF8(void) {
    return (XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
}

/// The typed STACK_OF(X509) accessors are macros.
static inline STACK_OF(X509) *shim_X509_stack_new(void) {
    return sk_X509_new_null();
}

static inline int shim_X509_stack_push(STACK_OF(X509) *stack, X509 *certificate) {
    return sk_X509_push(stack, certificate);
}

static inline int shim_X509_stack_count(const STACK_OF(X509) *stack) {
    return sk_X509_num(stack);
}

static inline X509 *shim_X509_stack_value(const STACK_OF(X509) *stack, int index) {
    return sk_X509_value(stack, index);
}

/// Frees the stack without freeing the certificates in it (the caller still owns them).
static inline void shim_X509_stack_free(STACK_OF(X509) *stack) {
    sk_X509_free(stack);
}

/// Frees the stack and every certificate in it.
static inline void shim_X509_stack_pop_free(STACK_OF(X509) *stack) {
    sk_X509_pop_free(stack, X509_free);
}

static inline int shim_GENERAL_NAMES_count(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}

static inline GENERAL_NAME *shim_GENERAL_NAMES_value(const GENERAL_NAMES *names, int index) {
    return sk_GENERAL_NAME_value(names, index);
}

#endif
