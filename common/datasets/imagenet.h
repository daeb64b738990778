// ImageNet-1k class table in the index order every ImageNet-1k classifier (timm, torchvision ImageFolder on the
// sorted wnid folders, MoH-ViT) uses: index, WordNet id and lemmas. Data: pytorch-image-models
// timm/data/_info/imagenet_synsets.txt + imagenet_synset_to_lemma.txt, copied into common/datasets/data/imagenet_classes.tsv
// and embedded into the binary (common/datasets/imagenet_classes.inc), so installed binaries need no data files.
#pragma once
#include <string>
#include <vector>

namespace moh {

struct ImageNetClass {
  int index;
  std::string wnid;  // e.g. "n02099601"
  std::string name;  // first lemma, e.g. "golden retriever"
  std::vector<std::string> lemmas;  // all lemmas, e.g. {"tabby", "tabby cat"}
};

// 1000 entries; entry i has index i.
const std::vector<ImageNetClass>& imagenet_classes();

// Resolves an index ("207"), a wnid ("n02099601") or a name (any lemma, case-insensitive, surrounding spaces and
// '_'/'-' vs ' ' ignored). Throws moh::Error for unknown queries (suggesting the 3 closest names) and for names shared
// by two classes (listing them: use the index or wnid).
int resolve_imagenet_class(const std::string& query);

// "207 golden retriever (n02099601)"; throws moh::Error when index is out of range.
std::string imagenet_label(int index);

}  // namespace moh
