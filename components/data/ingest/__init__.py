"""Real image-caption sources -> raw samples -> validated, parsed record shards.

Source kinds (``SourceSpec.kind``), each read by ``components.data.ingest.sources``:
    webdataset     tar shards of ``KEY.jpg|png|webp`` + ``KEY.txt`` or ``KEY.json`` (img2dataset
                   ``webdataset`` output, or any WebDataset)
    parquet        Parquet with an image column of bytes, paths, or HF-datasets
                   ``struct<bytes, path>`` (img2dataset ``parquet`` output, HF ``datasets``)
    files          img2dataset ``files`` output: ``SSSSS/KEY.jpg`` + ``KEY.txt`` / ``KEY.json``
    coco           a COCO captions JSON (one row per annotation) and its image folder
    visual_genome  VG ``scene_graphs.json`` / ``relationships.json`` (+ ``attributes.json``):
                   gold graphs, one row per image, no parser needed
    gqa            GQA ``*_sceneGraphs.json``: gold graphs, one row per image
``path`` is a file, folder, URI (``s3://``...), glob or brace pattern (components.platform.storage).

Modules: ``base`` (SourceSpec, RawSample, Unit: what sources and the build share),
``sources`` (one reader per kind), ``validate`` (what a usable sample is), ``read`` (a
window of units as a Ray Dataset), ``negatives`` (real-caption hard negatives), ``build``
(the resumable source -> shards job) and ``demo`` (a tiny WebDataset to try it on).
"""
