import ApplianceCrypto

/// Streaming age decryption with a passphrase (scrypt recipient).
///
/// Feed the file in pieces of any size; each `feed(_:)` returns plaintext that has already been authenticated.
/// The last up-to-64 KiB chunk is returned by `finish()`, since only the end of the input shows which chunk is the
/// last. Memory stays bounded by the 64 KiB header limit, one sealed chunk and the output of the current call.
///
/// Input that does not start with the age version line throws `.notEncrypted` from the first `feed` that shows it,
/// so the caller can fall back to reading a plain tar. A class for symmetry with `AgeEncryptor` and because it owns
/// a cipher context; not Sendable, use it from one task.
public final class AgeDecryptor {
    /// A header larger than this is rejected as corrupt, so junk input cannot make the decryptor buffer forever.
    public static let maximumHeaderSize = 64 * 1024

    private enum State {
        case header
        case payloadNonce
        case payload
        case finished
    }

    private let passphrase: String
    private let maxWorkFactor: Int
    private var state = State.header
    private var failure: BackupFormatError?

    private var headerBuffer: [UInt8] = []
    private var currentLineStart = 0
    private var fileKey: [UInt8] = []
    private var payloadNonce: [UInt8] = []

    private var cipher: ChaCha20Poly1305?
    private var nonce = [UInt8](repeating: 0, count: ChaCha20Poly1305.nonceLength)
    private var counter: UInt64 = 0
    /// Sealed bytes not yet known to be a non-final chunk; at most one sealed chunk.
    private var chunkBuffer: [UInt8] = []

    /// The scrypt work factor named by the header, once the header has been read.
    public private(set) var workFactor: Int?

    /// `maxWorkFactor` bounds the scrypt cost (2^22 is 4 GiB of memory and several seconds); headers asking for
    /// more are refused with `.unsupported` before any work is done.
    public init(passphrase: String, maxWorkFactor: Int = 22) {
        precondition((1...30).contains(maxWorkFactor), "maxWorkFactor must be 1...30")
        self.passphrase = passphrase
        self.maxWorkFactor = maxWorkFactor
    }

    /// Consumes the next piece of the file and returns the plaintext authenticated so far (often empty).
    /// Once it throws, every later call throws the same error.
    public func feed(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        precondition(state != .finished, "AgeDecryptor.feed called after finish()")
        if let failure {
            throw failure
        }
        do {
            var position = 0
            if state == .header {
                position = try consumeHeader(bytes)
            }
            if state == .payloadNonce, position < bytes.count {
                let take = min(AgeFormat.payloadNonceLength - payloadNonce.count, bytes.count - position)
                payloadNonce += UnsafeRawBufferPointer(rebasing: bytes[position..<position + take])
                position += take
                if payloadNonce.count == AgeFormat.payloadNonceLength {
                    cipher = ChaCha20Poly1305(key: AgeFormat.payloadKey(fileKey: fileKey, nonce: payloadNonce))
                    fileKey = []
                    chunkBuffer.reserveCapacity(AgeFormat.sealedChunkSize)
                    state = .payload
                }
            }
            if state == .payload, position < bytes.count {
                return try consumePayload(UnsafeRawBufferPointer(rebasing: bytes[position...]))
            }
            return []
        } catch let error as BackupFormatError {
            failure = error
            throw error
        }
    }

    public func feed(_ bytes: [UInt8]) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try feed($0) }
    }

    /// Signals the end of the input and returns the plaintext of the final chunk. Throws `.truncated` when the
    /// input stopped before the final chunk, and `.corrupt` when the final chunk does not authenticate (damaged,
    /// cut inside a chunk, or followed by extra bytes). Call exactly once, after the last `feed`.
    public func finish() throws -> [UInt8] {
        precondition(state != .finished, "AgeDecryptor.finish called twice")
        if let failure {
            throw failure
        }
        let finalState = state
        state = .finished
        do {
            switch finalState {
            case .header:
                if headerBuffer.isEmpty {
                    throw BackupFormatError(
                        code: .notEncrypted,
                        message: "the input is empty; choose the backup file again"
                    )
                }
                throw truncated("the backup ends inside its encryption header")
            case .payloadNonce:
                throw truncated("the backup ends right after its encryption header, before any data")
            case .payload:
                return try openFinalChunk()
            case .finished:
                preconditionFailure("unreachable")
            }
        } catch let error as BackupFormatError {
            failure = error
            throw error
        }
    }

    // MARK: - Header

    /// Reads header lines from `bytes` and returns how many bytes belong to the header. Lines are checked as they
    /// complete, so each byte is scanned once however finely the input is split.
    private func consumeHeader(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        var position = 0
        while position < bytes.count {
            // Never look further than the header size limit allows, so junk input is not scanned in full.
            let room = Self.maximumHeaderSize - headerBuffer.count
            let searchEnd = min(bytes.count, position + room)
            var lineEnd = searchEnd
            var completesLine = false
            if let newline = bytes[position..<searchEnd].firstIndex(of: UInt8(ascii: "\n")) {
                lineEnd = newline + 1
                completesLine = true
            }
            headerBuffer += UnsafeRawBufferPointer(rebasing: bytes[position..<lineEnd])
            position = lineEnd
            try checkVersionLine()
            guard completesLine else {
                if headerBuffer.count >= Self.maximumHeaderSize {
                    throw corrupt("the backup's encryption header is larger than 64 KiB")
                }
                continue
            }
            let line = headerBuffer[currentLineStart..<headerBuffer.count - 1]
            currentLineStart = headerBuffer.count
            if line.starts(with: "---".utf8) {
                try processHeader()
                state = .payloadNonce
                break
            }
        }
        return position
    }

    /// Rejects input whose first bytes are not "age-encryption.org/v1\n" as soon as the first mismatch arrives.
    private func checkVersionLine() throws {
        let count = min(headerBuffer.count, AgeFormat.versionLine.count)
        guard headerBuffer[..<count].elementsEqual(AgeFormat.versionLine[..<count]) else {
            throw BackupFormatError(
                code: .notEncrypted,
                message: "the input is not an age-encrypted backup (it does not start with \"age-encryption.org/v1\")"
            )
        }
    }

    private struct Stanza {
        var arguments: [[UInt8]]
        var body: [UInt8]
    }

    /// Parses the complete header (the buffer ends with the "---" line), unwraps the file key and checks the MAC.
    private func processHeader() throws {
        var lines = headerBuffer.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        lines.removeLast()  // The empty remainder after the final newline.
        var index = 1  // Line 0 is the version line, already checked.
        var stanzas: [Stanza] = []
        while index < lines.count - 1 {
            stanzas.append(try parseStanza(lines, &index))
        }
        guard !stanzas.isEmpty else {
            throw corrupt("the backup's encryption header has no recipient")
        }
        let footer = lines[lines.count - 1]
        let macStart = footer.startIndex + 4
        guard footer.starts(with: "--- ".utf8), footer.count > 4,
            let mac = UnpaddedBase64.decode(footer[macStart...]), mac.count == 32
        else {
            throw corrupt("the backup's encryption header has a malformed MAC line")
        }
        let scryptStanzas = stanzas.filter { $0.arguments[0].elementsEqual("scrypt".utf8) }
        guard let stanza = scryptStanzas.first else {
            let types = stanzas.map { String(decoding: $0.arguments[0], as: UTF8.self) }.joined(separator: ", ")
            throw BackupFormatError(
                code: .unsupported,
                message: "the file is encrypted to age recipient types [\(types)] rather than with a password; "
                    + "decrypt it with age and an identity file first"
            )
        }
        guard stanzas.count == 1 else {
            // The age spec forbids mixing a passphrase with other recipients (it would not be password-only).
            throw corrupt("the backup's encryption header mixes a password with other recipients")
        }
        let factor = try parseScryptArguments(stanza)
        guard factor.workFactor <= maxWorkFactor else {
            throw BackupFormatError(
                code: .unsupported,
                message: "the backup uses scrypt work factor \(factor.workFactor), above the allowed "
                    + "\(maxWorkFactor); re-encrypt it with a lower work factor"
            )
        }
        workFactor = factor.workFactor
        guard stanza.body.count == AgeFormat.wrappedFileKeyLength else {
            throw corrupt("the backup's password stanza holds \(stanza.body.count) bytes instead of 32")
        }

        let wrapKey: [UInt8]
        do {
            wrapKey = try AgeFormat.wrapKey(passphrase: passphrase, salt: factor.salt, workFactor: factor.workFactor)
        } catch {
            throw BackupFormatError(
                code: .unsupported,
                message: "deriving the backup key failed (\(error)); the machine may be short of memory"
            )
        }
        do {
            fileKey = try ChaCha20Poly1305(key: wrapKey).open(stanza.body, nonce: AgeFormat.zeroNonce)
        } catch {
            throw BackupFormatError(
                code: .wrongPassword,
                message: "the backup password is wrong; check it and try again (a lost backup password cannot be "
                    + "recovered)"
            )
        }
        // The MAC covers the header up to and including "---", not the space and MAC that follow.
        let macEnd = headerBuffer.count - footer.count - 1 + 3
        let expected = AgeFormat.headerMAC(fileKey: fileKey, headerText: Array(headerBuffer[..<macEnd]))
        guard ConstantTime.equals(expected, mac) else {
            throw corrupt("the backup's encryption header was modified (its MAC does not match)")
        }
        headerBuffer = []
    }

    private func parseStanza(_ lines: [ArraySlice<UInt8>], _ index: inout Int) throws -> Stanza {
        let line = lines[index]
        guard line.starts(with: "-> ".utf8) else {
            throw corrupt("the backup's encryption header has an unexpected line where a recipient should be")
        }
        let arguments = line.dropFirst(3).split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        // Arguments are non-empty runs of visible ASCII separated by single spaces.
        let isValidArgument = { (argument: ArraySlice<UInt8>) in
            !argument.isEmpty && argument.allSatisfy { (0x21...0x7e).contains($0) }
        }
        guard !arguments.isEmpty, arguments.allSatisfy(isValidArgument) else {
            throw corrupt("the backup's encryption header has a malformed recipient line")
        }
        index += 1
        // Body: full 64-column base64 lines, ended by a shorter (possibly empty) line.
        var encodedBody: [UInt8] = []
        while true {
            guard index < lines.count - 1 else {
                throw corrupt("a recipient in the backup's encryption header has no end to its body")
            }
            let bodyLine = lines[index]
            index += 1
            guard bodyLine.count <= AgeFormat.bodyColumns else {
                throw corrupt("the backup's encryption header has an over-long line")
            }
            encodedBody += bodyLine
            if bodyLine.count < AgeFormat.bodyColumns {
                break
            }
        }
        guard let body = UnpaddedBase64.decode(encodedBody) else {
            throw corrupt("a recipient body in the backup's encryption header is not valid base64")
        }
        return Stanza(arguments: arguments.map { Array($0) }, body: body)
    }

    private func parseScryptArguments(_ stanza: Stanza) throws -> (salt: [UInt8], workFactor: Int) {
        guard stanza.arguments.count == 3,
            let salt = UnpaddedBase64.decode(stanza.arguments[1]), salt.count == AgeFormat.scryptSaltLength
        else {
            throw corrupt("the backup's password stanza is malformed")
        }
        let digits = stanza.arguments[2]
        // Decimal without leading zeros, as the spec requires; the length bound keeps Int parsing in range.
        guard (1...2).contains(digits.count), digits.first != UInt8(ascii: "0"),
            digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let workFactor = Int(String(decoding: digits, as: UTF8.self))
        else {
            throw corrupt("the backup's password stanza has an invalid work factor")
        }
        return (salt, workFactor)
    }

    // MARK: - Payload

    private func consumePayload(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        let sealedSize = AgeFormat.sealedChunkSize
        // Every chunk opened here has bytes after it, so none of them is the last chunk.
        let bound = (chunkBuffer.count + bytes.count) / sealedSize * AgeFormat.chunkSize
        var position = 0
        let output = try [UInt8](unsafeUninitializedCapacity: bound) { out, initialized in
            let out = UnsafeMutableRawBufferPointer(out)
            initialized = 0
            if !chunkBuffer.isEmpty {
                let take = min(sealedSize - chunkBuffer.count, bytes.count)
                chunkBuffer += UnsafeRawBufferPointer(rebasing: bytes[..<take])
                position = take
                if chunkBuffer.count == sealedSize, position < bytes.count {
                    initialized += try chunkBuffer.withUnsafeBytes { chunk in
                        try openInnerChunk(chunk, into: out, at: initialized)
                    }
                    chunkBuffer.removeAll(keepingCapacity: true)
                }
            }
            // Open straight from the caller's memory while a whole chunk and at least one more byte remain.
            while bytes.count - position > sealedSize {
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[position..<position + sealedSize])
                initialized += try openInnerChunk(chunk, into: out, at: initialized)
                position += sealedSize
            }
        }
        if position < bytes.count {
            chunkBuffer += UnsafeRawBufferPointer(rebasing: bytes[position...])
        }
        return output
    }

    private func openInnerChunk(
        _ chunk: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        at offset: Int
    ) throws -> Int {
        let target = UnsafeMutableRawBufferPointer(rebasing: output[offset...])
        if let count = try? open(chunk, last: false, into: target) {
            return count
        }
        // A chunk that opens with the last-chunk nonce but has bytes after it means data was appended.
        if (try? open(chunk, last: true, into: target)) != nil {
            throw corrupt("the backup has unexpected data after its end")
        }
        throw corrupt("part \(counter + 1) of the backup failed authentication (the file is damaged or was modified)")
    }

    private func openFinalChunk() throws -> [UInt8] {
        let count = chunkBuffer.count
        guard count > 0 else {
            throw truncated(
                counter == 0
                    ? "the backup ends right after its encryption header, before any data"
                    : "the backup ends after part \(counter), before its final part"
            )
        }
        guard count >= AgeFormat.tagLength else {
            throw truncated("the backup ends inside part \(counter + 1)")
        }
        var plaintext = [UInt8](repeating: 0, count: count - AgeFormat.tagLength)
        let opened = chunkBuffer.withUnsafeBytes { chunk in
            plaintext.withUnsafeMutableBytes { out in (try? open(chunk, last: true, into: out)) != nil }
        }
        if opened {
            guard !plaintext.isEmpty || counter == 1 else {
                throw corrupt("the backup ends with an empty final part, which the age format forbids")
            }
            chunkBuffer = []
            return plaintext
        }
        if count == AgeFormat.sealedChunkSize {
            let isInnerChunk = chunkBuffer.withUnsafeBytes { chunk in
                plaintext.withUnsafeMutableBytes { out in (try? open(chunk, last: false, into: out)) != nil }
            }
            if isInnerChunk {
                plaintext = []
                throw truncated("the backup ends after part \(counter), before its final part")
            }
        }
        // Either cut off inside a chunk or damaged: without a length field the two cannot be told apart.
        throw corrupt(
            "the final part of the backup failed authentication: the file is incomplete or damaged "
                + "(or has extra data appended)"
        )
    }

    /// Opens one sealed chunk with the next counter value; advances the counter only on success.
    private func open(_ chunk: UnsafeRawBufferPointer, last: Bool, into output: UnsafeMutableRawBufferPointer) throws
        -> Int
    {
        guard let cipher else {
            preconditionFailure("payload chunk before the payload key")
        }
        AgeFormat.setChunkNonce(&nonce, counter: counter, last: last)
        let count = try cipher.open(chunk, nonce: nonce, into: output)
        counter += 1
        return count
    }

    private func corrupt(_ message: String) -> BackupFormatError {
        BackupFormatError(
            code: .corrupt,
            message: message + "; the backup cannot be restored, use another copy of it"
        )
    }

    private func truncated(_ message: String) -> BackupFormatError {
        BackupFormatError(
            code: .truncated,
            message: message + "; the file is incomplete, copy or download it again"
        )
    }
}
