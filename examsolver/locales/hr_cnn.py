"""Hrvatske fraze za 2D konvoluciju, 2D sažimanje, izravnavanje i zaključenu veličinu slike."""

PHRASES = {
    # conv2d
    "forward.conv2d": "Unaprijedni prolaz kroz 2D konvolucijski sloj {layer} ({c} {c:jezgra|jezgre|jezgri} veličine {kh}×{kw}, {details}), po jedna mapa značajki za svaku jezgru:",
    "backward.conv2d": "Gradijenti 2D konvolucijskog sloja {layer} ({details}): ∂L/∂w = x ⋆ ∂L/∂h, zbrojeno po svim položajima jezgre:",
    "conv2d.padding_stride": "nadopunjavanje nulama {ph}×{pw}, korak {sh}×{sw}{more}",
    # dilatacija i grupe (1D i 2D)
    "conv1d.options": " (korak {s}, nadopunjavanje nulama {p}{more})",
    "conv.dilation": ", dilatacija {d}: dil(w) je jezgra čiji su elementi razmaknuti za {d} (između njih su nule)",
    "conv.groups": ", {g} {g:grupa|grupe|grupa}: svaka jezgra čita samo {c} {c:ulazni kanal|ulazna kanala|ulaznih kanala} svoje grupe",
    "conv.dilation_groups": ", dilatacija {d}: dil(w) je jezgra čiji su elementi razmaknuti za {d} (između njih su nule), {g} {g:grupa|grupe|grupa}: svaka jezgra čita samo {c} {c:ulazni kanal|ulazna kanala|ulaznih kanala} svoje grupe",
    "conv.dilated_taps": "Uz dilataciju {d} elementi jezgre u dil(w) razmaknuti su za {d}, pa ∂L/∂w čine ti elementi od ∂L/∂dil(w):",
    # pooling
    "pool.padding": ", nadopunjavanje {ph}×{pw}",
    "forward.max_pool2d": "Sažimanje maksimumom {layer} (prozor {kh}×{kw}, korak {sh}×{sw}{padding}), zasebno za svaku mapu značajki:",
    "backward.max_pool2d": "Unatražni prolaz kroz sažimanje maksimumom {layer}: gradijent svakog prozora ide njegovom maksimumu (maska M; up(·) ponavlja svaki element po njegovu prozoru):",
    "forward.avg_pool2d": "Sažimanje prosjekom {layer} (prozor {kh}×{kw}, korak {sh}×{sw}{padding}), zasebno za svaku mapu značajki:",
    "backward.avg_pool2d": "Unatražni prolaz kroz sažimanje prosjekom {layer}: gradijent prozora jednako se dijeli na sve njegove elemente (up(·) ponavlja svaki element po njegovu prozoru):",
    "forward.max_pool1d": "Sažimanje maksimumom {layer} (prozor {k}, korak {s}, nadopunjavanje {p}), zasebno za svaki kanal:",
    "backward.max_pool1d": "Unatražni prolaz kroz sažimanje maksimumom {layer}: gradijent svakog prozora ide njegovom maksimumu (maska M; up(·) ponavlja svaki element po njegovu prozoru):",
    "forward.avg_pool1d": "Sažimanje prosjekom {layer} (prozor {k}, korak {s}, nadopunjavanje {p}), zasebno za svaki kanal:",
    "backward.avg_pool1d": "Unatražni prolaz kroz sažimanje prosjekom {layer}: gradijent prozora dijeli se na njegove elemente (up(·) ponavlja svaki element po njegovu prozoru):",
    "convention.avg_pool_pad_included": "Sažimanje prosjekom uz nadopunjavanje: nadopunjene nule se broje, svaki se prozor dijeli veličinom jezgre (u PyTorchu {option} = True).",
    "convention.avg_pool_pad_excluded": "Sažimanje prosjekom uz nadopunjavanje: broje se samo ulazi koje prozor pokriva (u PyTorchu {option} = False).",
    "forward.flatten": "Izravnavanje mapa značajki u vektor:",
    "backward.flatten": "Unatražni prolaz kroz izravnavanje (gradijent ponovno dobiva oblik mapa značajki):",
    # conventions
    "convention.maxpool_first": "Izjednačeni maksimumi pri sažimanju: gradijent ide prvom maksimumu prozora redom po recima (kao u PyTorchu).",
    "convention.maxpool_split": "Izjednačeni maksimumi pri sažimanju: gradijent se jednako dijeli na sve izjednačene maksimume prozora.",
    "convention.flatten_channel_first": "Izravnavanje po kanalima: najprije cijela prva mapa značajki redak po redak, zatim druga, … (poredak (C, H, W), kao u PyTorchu).",
    "convention.flatten_channel_last": "Izravnavanje po položajima: za svaki položaj (redak po redak) svi kanali (poredak (H, W, C), kao u TensorFlowu/Kerasu).",
    # warnings
    "warning.maxpool_ties": "{layer}: {count} od {total} prozora sažimanja ima više od jednog maksimuma. {rule} Drugo pravilo dalo bi drukčije gradijente.",
    # input size
    "section.input_size": "Veličina ulazne slike",
    "input_size.flatten": "Potpuno povezani sloj prima {width} ulaza, izravnane mape značajki ({channels}) veličine H×W:",
    "input_size.square": "Uz pretpostavku kvadratnih mapa značajki (H = W):",
    "input_size.layer": "Unatrag kroz {layer} (prozor k = {k}, korak s = {s}, nadopunjavanje p = {p}); $n_{{\\text{{in}}}} = (n_{{\\text{{out}}}} - 1) \\cdot s + k - 2p$ je veličina čije prozore ulaz točno pokriva:",
    "input_size.result": "Ulazna slika je veličine {shape}.",
    "input_size.floor": "Uz zaokruživanje naniže (kao u PyTorchu) ulazne veličine {sizes} daju iste oblike; veće ostavljaju zadnje retke/stupce neiskorištene, pa uzimamo {size}.",
    "input_size.alternative_outside": "Uz nadopunjavanje nulama {p} u svakoj konvoluciji slika bi bila {shape}; zadani element na ({at}) je izvan nje, pa to čitanje ne odgovara podacima.",
    "input_size.alternative_fits": "Uz nadopunjavanje nulama {p} u svakoj konvoluciji slika bi bila {shape}; zadani elementi odgovaraju i tom čitanju.",
}
