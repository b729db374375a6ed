/// Helpers for looking at the lines of a YAML file as text.
enum TextLines {
    /// True for a line holding nothing but white space or a comment.
    static func isBlankOrComment(_ line: some StringProtocol) -> Bool {
        let content = line.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
        return content.isEmpty || content.first == "#"
    }

    /// True for a line holding nothing but a comment.
    static func isComment(_ line: some StringProtocol) -> Bool {
        line.drop { $0 == " " || $0 == "\t" }.first == "#"
    }

    /// The number of leading spaces (YAML indents with spaces only).
    static func indentation(of line: some StringProtocol) -> Int {
        line.unicodeScalars.prefix { $0 == " " }.count
    }

    /// The lines of `text` without their "\n" (a "\r" before it stays); a final newline yields a last, empty
    /// line. Splits on Unicode scalars: as a `Character`, "\r\n" is one grapheme and not equal to "\n".
    static func split(_ text: String) -> [String] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map {
            String(String.UnicodeScalarView($0))
        }
    }
}
