"""Inter-pixel Relation Network (Ahn, Cho, Kwak, CVPR 2019), after jiwoon-ahn/irn: relation labels from
confident-region labels, the boundary/displacement network and its loss, the training dataset, and the
random-walk semantic-segmentation labels."""
from matlabel.irn.data import AffinityAugment, IRNDataset, downsample_label
from matlabel.irn.loss import irn_loss
from matlabel.irn.model import (
    IRNet,
    edge_to_affinity,
    pair_displacement,
    stage_channels,
)
from matlabel.irn.random_walk import (
    dense_transition_matrix,
    downsample_maps,
    edge_map,
    propagate,
    sem_seg_labels,
    transition_matrix,
)
from matlabel.irn.relations import PathIndex, relation_labels, search_directions

__all__ = [
    "AffinityAugment", "IRNDataset", "IRNet", "PathIndex", "dense_transition_matrix", "downsample_label",
    "downsample_maps", "edge_map", "edge_to_affinity", "irn_loss", "pair_displacement", "propagate",
    "relation_labels", "search_directions", "sem_seg_labels", "stage_channels", "transition_matrix",
]
