"""Datasets in VOC layout: synthetic (demo), PASCAL VOC 2012 + SBD, MS COCO 2014; one loader for all."""
