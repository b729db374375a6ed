#ifndef APPLIANCE_CLIBVIRT_SHIM_H
#define APPLIANCE_CLIBVIRT_SHIM_H

// Umbrella header for the libvirt C API as seen from Swift, plus the few small shims the Libvirt module needs.

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdlib.h>

/// An error handler that does nothing. libvirt's default handler prints every error to stderr; the Libvirt module
/// reports errors by throwing instead.
static inline void shim_silent_error(void *userData, virErrorPtr error) {
    (void)userData;
    (void)error;
}

/// Installs shim_silent_error as the process-wide default error handler.
static inline void shim_silence_errors(void) {
    virSetErrorFunc(NULL, shim_silent_error);
}

/// Frees a string or array that libvirt allocated and handed over to the caller.
static inline void shim_free(void *pointer) {
    free(pointer);
}

#endif
