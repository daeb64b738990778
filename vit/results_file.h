// A results table that grows by one row per run, so several checkpoints compare in one file: timm validate.py's
// --results-file (write_results: a CSV with a header row, or JSON). CSV: the header is written when the file is new
// or empty, and a file with other columns is refused; JSON: the file is a list of row objects. Written atomically.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace moh::vit {

// `row`: flat values (strings, numbers, booleans, null = empty cell) in column order. The format follows the
// extension (.csv or .json, any case); throws moh::Error for another extension, another header, a JSON file that
// is not a list, or a write failure.
void append_results_row(const std::string& path, const nlohmann::ordered_json& row);

}  // namespace moh::vit
