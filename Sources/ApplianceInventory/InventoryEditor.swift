import Yams

/// Edits scalar values of an inventory file line by line, so that comments, blank lines, key order and
/// everything not edited stay as they were.
///
/// Uses the positions Yams records for each node. Refuses (code `.cannotEdit`) what it cannot edit safely:
/// values that do not start on their key's line, multi-line values, and flow-style mappings (`{…}`) that lack
/// the key.
struct InventoryEditor {
    private(set) var lines: [String]
    let file: String
    private let lineEnding: String
    /// New lines to insert after a line index, in order.
    private var insertions: [Int: [String]] = [:]

    init(text: String, file: String) {
        self.lines = TextLines.split(text)
        self.file = file
        self.lineEnding = lines.first?.hasSuffix("\r") == true ? "\r" : ""
    }

    /// The edited text.
    var text: String {
        var result = lines
        for (index, newLines) in insertions.sorted(by: { $0.key > $1.key }) {
            result.insert(contentsOf: newLines.map { $0 + lineEnding }, at: index + 1)
        }
        return result.joined(separator: "\n")
    }

    /// One value to set: `key` in `mapping`, the value of `parentKey`.
    struct Change {
        var key: String
        var value: String
        var mapping: Node
        var parentKey: Node
        /// Where the mapping is, for messages: " in appliance 'new-vm'".
        var scope: String
    }

    /// Makes the changes: a key that exists has its value replaced in place; a missing key is added as
    /// `key: value` at the end of its block, with the block's indentation, in the order given.
    mutating func apply(_ changes: [Change]) throws {
        var replacements: [(change: Change, key: Node, value: Node, inFlow: Bool)] = []
        for change in changes {
            guard case .mapping(let pairs) = change.mapping else {
                throw cannotEdit("\(change.scope) is not a mapping", at: change.parentKey)
            }
            if let pair = pairs.first(where: { $0.key.string == change.key }) {
                // A flow mapping (`{…}`) starts at its brace, a block mapping at its first key.
                let inFlow = pairs.first.map { $0.key.mark?.description != change.mapping.mark?.description } ?? false
                replacements.append((change, pair.key, pair.value, inFlow))
            } else {
                try insert(
                    "\(change.key): \(Self.render(change.value))",
                    into: pairs,
                    under: change.parentKey,
                    scope: change.scope
                )
            }
        }
        // Right to left, bottom to top: an edit never moves the text of one still to come.
        let ordered = replacements.sorted {
            let left = ($0.value.mark?.line ?? 0, $0.value.mark?.column ?? 0)
            let right = ($1.value.mark?.line ?? 0, $1.value.mark?.column ?? 0)
            return left > right
        }
        for replacement in ordered {
            try replaceValue(
                of: replacement.key,
                replacement.value,
                with: Self.render(replacement.change.value),
                inFlow: replacement.inFlow,
                scope: replacement.change.scope
            )
        }
    }

    // MARK: Replacing

    private mutating func replaceValue(
        of keyNode: Node,
        _ valueNode: Node,
        with rendered: String,
        inFlow: Bool,
        scope: String
    ) throws {
        guard let keyMark = keyNode.mark, case .scalar(let keyScalar) = keyNode else {
            throw cannotEdit("cannot find '\(keyNode.string ?? "?")'\(scope) in the text", at: keyNode)
        }
        let index = keyMark.line - 1
        guard lines.indices.contains(index) else {
            throw cannotEdit("cannot find '\(keyScalar.string)'\(scope) in the text", at: keyNode)
        }
        let keyName = keyScalar.string
        let line = Array(lines[index].unicodeScalars.filter { $0 != "\r" })
        let problem =
            "cannot record '\(keyName)'\(scope) automatically: put its value on the same line as the key, "
            + "as in '\(keyName): null', or edit it by hand"

        guard let colon = Self.colonAfterKey(in: line, keyStart: keyMark.column - 1, key: keyScalar) else {
            throw cannotEdit(problem, at: keyNode)
        }
        let valueStart: Int
        let valueEnd: Int
        guard case .scalar(let valueScalar) = valueNode else { throw cannotEdit(problem, at: valueNode) }
        if valueScalar.string.isEmpty && valueScalar.style == .plain {
            // `key:` with nothing after it but maybe a comment.
            valueStart = colon + 1
            valueEnd = colon + 1
        } else {
            guard let valueMark = valueNode.mark, valueMark.line == keyMark.line, valueMark.column - 1 > colon,
                line[(colon + 1)..<(valueMark.column - 1)].allSatisfy({ $0 == " " || $0 == "\t" }),
                let end = Self.endOfValue(
                    in: line,
                    start: valueMark.column - 1,
                    style: valueScalar.style,
                    inFlow: inFlow
                )
            else { throw cannotEdit(problem, at: valueNode) }
            valueStart = valueMark.column - 1
            valueEnd = end
        }
        // In a block mapping, a more-indented line after the key continues the value (a multi-line scalar).
        // (In a flow mapping such a line may be the next key; the read-back check catches a continued value.)
        let keyIndent = TextLines.indentation(of: lines[index])
        if !inFlow, let next = lines[(index + 1)...].first(where: { !TextLines.isBlankOrComment($0) }),
            TextLines.indentation(of: next) > keyIndent
        {
            throw cannotEdit(problem, at: valueNode)
        }

        var prefix = String(String.UnicodeScalarView(line[..<valueStart]))
        if valueStart == colon + 1 { prefix += " " }
        let rest = line[valueEnd...]
        let comment = rest.drop { $0 == " " || $0 == "\t" }
        var newLine = prefix + rendered
        if comment.first == "#" {
            // Keep the comment in its column when the new value leaves room.
            let commentColumn = line.count - comment.count
            newLine += String(repeating: " ", count: max(1, commentColumn - newLine.unicodeScalars.count))
            newLine += String(String.UnicodeScalarView(comment))
        } else if inFlow {
            newLine += String(String.UnicodeScalarView(rest))  // the rest of the flow: `, pin: x}`
        } else if !comment.isEmpty {
            throw cannotEdit(problem, at: valueNode)
        }
        lines[index] = newLine + lineEnding
    }

    /// The index of the ':' that ends the key starting at `keyStart`.
    private static func colonAfterKey(in line: [Unicode.Scalar], keyStart: Int, key: Node.Scalar) -> Int? {
        guard line.indices.contains(keyStart) else { return nil }
        var position: Int
        switch key.style {
        case .doubleQuoted, .singleQuoted:
            guard let end = endOfValue(in: line, start: keyStart, style: key.style) else { return nil }
            position = end
        default:
            let spelled = Array(key.string.unicodeScalars)
            guard line.count >= keyStart + spelled.count, Array(line[keyStart..<(keyStart + spelled.count)]) == spelled
            else { return nil }
            position = keyStart + spelled.count
        }
        while position < line.count, line[position] == " " || line[position] == "\t" { position += 1 }
        return position < line.count && line[position] == ":" ? position : nil
    }

    /// Where a single-line scalar that starts at `start` ends (exclusive); nil when it does not end on this line
    /// or has a style this editor does not handle. In a flow mapping a plain scalar also ends at ',', ']' or '}'.
    private static func endOfValue(
        in line: [Unicode.Scalar],
        start: Int,
        style: Node.Scalar.Style,
        inFlow: Bool = false
    ) -> Int? {
        guard line.indices.contains(start) else { return nil }
        switch style {
        case .plain, .any:
            var position = start
            while position < line.count {
                if line[position] == "#", position > start, line[position - 1] == " " || line[position - 1] == "\t" {
                    break
                }
                if inFlow, ",]}".unicodeScalars.contains(line[position]) { break }
                position += 1
            }
            while position > start, line[position - 1] == " " || line[position - 1] == "\t" { position -= 1 }
            return position
        case .doubleQuoted:
            var position = start + 1
            while position < line.count {
                if line[position] == "\\" {
                    position += 2
                    continue
                }
                if line[position] == "\"" { return position + 1 }
                position += 1
            }
            return nil
        case .singleQuoted:
            var position = start + 1
            while position < line.count {
                if line[position] == "'" {
                    if position + 1 < line.count, line[position + 1] == "'" {
                        position += 2
                        continue
                    }
                    return position + 1
                }
                position += 1
            }
            return nil
        case .literal, .folded:
            return nil
        }
    }

    // MARK: Inserting

    private mutating func insert(
        _ newLine: String,
        into pairs: Node.Mapping,
        under parentKey: Node,
        scope: String
    ) throws {
        guard let parentMark = parentKey.mark else {
            throw cannotEdit("cannot find\(scope) in the text", at: parentKey)
        }
        // Only a block mapping (one key per line, all at one indentation) can take a new line.
        var indent: Int?
        for (key, _) in pairs {
            guard let mark = key.mark, lines.indices.contains(mark.line - 1) else {
                throw cannotEdit("cannot find\(scope) in the text", at: parentKey)
            }
            let before = lines[mark.line - 1].unicodeScalars.prefix(mark.column - 1)
            guard before.allSatisfy({ $0 == " " }), indent == nil || indent == mark.column - 1 else {
                throw cannotEdit(
                    "cannot add a line\(scope): it is written in flow style ({…}); write it one key per line",
                    at: parentKey
                )
            }
            indent = mark.column - 1
        }
        guard let indent else { throw cannotEdit("cannot add a line\(scope): the mapping is empty", at: parentKey) }

        // The block runs until the next line indented no deeper than its parent key; its last line is the last
        // non-blank line before that, not counting comments that sit at the parent's level (they introduce
        // whatever follows).
        let parentLine = parentMark.line - 1
        let parentIndent = parentMark.column - 1
        var end = lines.count
        for index in (parentLine + 1)..<lines.count
        where !TextLines.isBlankOrComment(lines[index]) && TextLines.indentation(of: lines[index]) <= parentIndent {
            end = index
            break
        }
        var last = parentLine
        for index in (parentLine + 1)..<end where !TextLines.isBlankOrComment(lines[index]) {
            last = index
        }
        for index in stride(from: end - 1, to: last, by: -1)
        where TextLines.isComment(lines[index]) && TextLines.indentation(of: lines[index]) > parentIndent {
            last = index
            break
        }
        insertions[last, default: []].append(String(repeating: " ", count: indent) + newLine)
    }

    // MARK: Rendering

    /// `value` as a YAML scalar: plain when that reads back as the same string, else double-quoted.
    static func render(_ value: String) -> String {
        let scalars = value.unicodeScalars
        let safe = scalars.allSatisfy {
            $0.isASCII
                && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._/+=:-".unicodeScalars.contains($0))
        }
        if safe, let first = scalars.first, first.properties.isAlphabetic || ("0"..."9").contains(first),
            !value.hasSuffix(":"), Resolver.default.resolveTag(of: Node(value)) == .str
        {
            return value
        }
        var quoted = "\""
        for scalar in scalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                quoted += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    private func cannotEdit(_ message: String, at node: Node) -> InventoryError {
        InventoryError(
            code: .cannotEdit,
            message: message + "; the file is unchanged",
            location: .init(file: file, line: node.mark?.line, column: node.mark?.column)
        )
    }
}
