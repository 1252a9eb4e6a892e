// A table of strings and its Markdown, aligned-text and CSV renderings.
import Foundation

/// A titled table whose cells are already formatted.
public struct Table: Sendable, Equatable {
  public var title: String
  public var columns: [String]
  public var rows: [[String]]

  public init(title: String, columns: [String], rows: [[String]]) {
    for row in rows {
      precondition(row.count == columns.count,
                   "Table '\(title)' has \(columns.count) columns, but a row has \(row.count) cells: \(row).")
    }
    self.title = title
    self.columns = columns
    self.rows = rows
  }

  /// A GitHub Markdown table with every column padded to its widest cell, as Prettier formats the seed README.
  /// `|` inside a cell is escaped.
  public func markdown() -> String {
    let escaped = ([columns] + rows).map { $0.map { $0.replacingOccurrences(of: "|", with: "\\|") } }
    let widths = columnWidths(escaped, minimum: 3)  // a separator cell needs at least three dashes
    func line(_ cells: [String]) -> String {
      "| " + zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
        .joined(separator: " | ") + " |"
    }
    var lines = [line(escaped[0]), line(widths.map { String(repeating: "-", count: $0) })]
    lines += escaped.dropFirst().map(line)
    return lines.joined(separator: "\n") + "\n"
  }

  /// Plain text for a terminal: columns left-aligned, separated by two spaces, trailing blanks trimmed.
  public func text() -> String {
    let all = [columns] + rows
    let widths = columnWidths(all, minimum: 0)
    return all.map { cells in
      let padded = zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
      var line = padded.joined(separator: "  ")
      while line.last == " " { line.removeLast() }
      return line
    }.joined(separator: "\n") + "\n"
  }

  /// RFC 4180 CSV: a header line, then the rows; cells with commas, quotes or line breaks are quoted.
  public func csv() -> String {
    func field(_ cell: String) -> String {
      guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return cell }
      return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return ([columns] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
  }

  private func columnWidths(_ lines: [[String]], minimum: Int) -> [Int] {
    columns.indices.map { column in lines.map { $0[column].count }.max().map { max($0, minimum) } ?? minimum }
  }
}
