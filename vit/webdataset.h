// WebDataset tar shards as an evaluation dataset (e.g. timm's / Hugging Face's imagenet1k-validation-{000000..000063}
// .tar): a sample is the run of consecutive members sharing a key (the member path up to the first '.' of its file
// name, as webdataset/tariterators.py base_plus_ext groups them), with an image member (.jpg .jpeg .png .webp) and a
// label member (.cls: the class index as text; or .json with a "label" field). Shards are read header by header
// (vit/tar_stream.h), never unpacked; a sample's image bytes are read from the shard when it is decoded.
#pragma once
#include <string>
#include <vector>

#include "vit/eval_dataset.h"

namespace moh::vit {

// The shard files `spec` names: a folder (its *.tar files, sorted), one .tar file, or a brace pattern such as
// "shards/imagenet1k-validation-{000000..000063}.tar" (numeric ranges keep their zero padding). Throws moh::Error
// when nothing matches or a named shard is missing.
std::vector<std::string> webdataset_shards(const std::string& spec);

// True when `spec` is a .tar file, a brace pattern of .tar files, or a folder that holds .tar files and no
// sub-folders (so list_eval_dataset reads it as WebDataset shards).
bool looks_like_webdataset(const std::string& spec);

// Every sample of every shard, in shard order then archive order; sample.shard = the shard's position. A truncated
// shard keeps its whole samples; the sample cut by the truncation is listed with `error` set (reported unreadable,
// naming the shard, the member and the byte offsets). Throws moh::Error naming the shard, member and byte offset for
// a sample without an image or a label, or with a label that is not a class of the model.
EvalDataset list_webdataset(const std::string& spec, const ClassResolver& resolve);

}  // namespace moh::vit
