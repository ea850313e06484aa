"""The DVC stages, one module each; ``stages/<stage>.py`` are the entry points DVC runs.

The pipeline fans out over the three table slots (``datasets``: fashionai, deepfashion, zappos)
and over the table cells (``cells``: slot x model variant), each cell trained and evaluated once
per seed of ``train.seeds``. Stages and what they read (``build/params/...json`` holds exactly
that part of the resolved config, so ``dvc repro`` reruns just the stages a change reaches):

    resolve          params.yaml                 -> build/params/<slot>/*.json, build/params/cells/<cell>/*.json
    download@<slot>  datasets.<slot> (+ data.demo), data/raw/<slot>/ -> the data in its genuine layout,
                     data/<slot>/download.json
    prepare@<slot>   data.split, data/raw/<slot>/ -> data/<slot>/prepared/  (parsed, split; agman.data.prepared)
    cache@<slot>     data.image_size/cache       -> data/<slot>/cache/     (prepared + resized image cache)
    triplets@<slot>  triplets, train.epochs      -> data/<slot>/triplets/epoch_XXX.npy
    cell@<cell>      model (+ variant), loss, train, eval -> runs/<slot>/<variant>/seed<k>/ (trained),
                     reports/curves/<slot>/<variant>/, reports/cells/<slot>/<variant>/seed<k>/ and
                     reports/metrics/<cell>.json (evaluated on the test split)
    tables           every cell's report         -> reports/tables/
    figures          the first seed's runs, caches -> reports/figures/ (Figures 5-8, validation curves)

Where each of these lives on disk is spelled in ``layout`` only. The raw data under ``data.root``
is not a DVC output (a second 30 GB copy in the DVC cache helps no one); ``data/<slot>/download.json``,
its manifest (file count and bytes, archive hashes), stands for it, and the user's own files in
``data/raw/<slot>/`` are deps of the stages that read them.
"""
