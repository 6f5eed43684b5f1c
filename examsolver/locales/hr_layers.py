"""Hrvatski izrazi za daljnje slojeve PyTorcha: aktivacije, normalizaciju nad slojem,
isključivanje neurona (dropout), globalno sažimanje maksimumom i ugrađivanje."""

PHRASES = {
    # activations
    "forward.leaky_relu": "Aktivacija propusnom zglobnicom (LeakyReLU):",
    "backward.leaky_relu": "Unatražni prolaz kroz propusnu zglobnicu (LeakyReLU):",
    "forward.elu": "Aktivacija eksponencijalnom linearnom jedinicom (ELU):",
    "backward.elu": "Unatražni prolaz kroz aktivaciju ELU:",
    "forward.softplus": "Aktivacija mekom zglobnicom (softplus):",
    "backward.softplus": "Unatražni prolaz kroz meku zglobnicu (softplus; njezina je derivacija sigmoida):",
    "forward.gelu": "Aktivacija GELU:",
    "backward.gelu": "Unatražni prolaz kroz aktivaciju GELU:",
    "forward.log_softmax": "Aktivacija logaritmom softmaksa (log-softmax):",
    "backward.log_softmax": "Unatražni prolaz kroz logaritam softmaksa:",
    "convention.leaky_relu": "Propusna zglobnica: nagib za negativne ulaze {slope} (u PyTorchu zadano 0,01); derivacija u nuli je {slope}, kao u PyTorchu.",
    "convention.elu": "ELU: α = {alpha}; derivacija u nuli je α, kao u PyTorchu.",
    "convention.softplus": "Meka zglobnica: β = {beta}; gdje je βx > {threshold}, jednaka je x (prag PyTorcha).",
    "convention.gelu_none": "GELU u točnom obliku x Φ(x), Φ je funkcija distribucije standardne normalne razdiobe (u PyTorchu approximate='none').",
    "convention.gelu_tanh": "GELU u PyTorchevoj aproksimaciji tangensom hiperbolnim ½x(1 + tanh(√(2/π)(x + 0,044715x³))).",
    # layer normalization
    "stats.layernorm": "Statistike normalizacije nad slojem {layer}, zasebno za svaki podatak (broj normaliziranih zadnjih osi: {count}):",
    "normalize.layernorm": "Normalizacija:",
    "affine.layernorm": "Skaliranje i pomak:",
    "backward.layernorm": "Unatražni prolaz kroz normalizaciju nad slojem {layer} (uključujući statistike podatka):",
    "convention.layernorm": "Normalizacija nad slojem: pristrani procjenitelj varijance (n u nazivniku), ε = {eps} (u PyTorchu zadano 1e-5).",
    # dropout
    "forward.dropout": "Isključivanje neurona (dropout) {layer} sa zadanom maskom m (p = {p}):",
    "forward.dropout_eval": "Isključivanje neurona (dropout) {layer} u načinu evaluacije:",
    "backward.dropout": "Unatražni prolaz kroz isključivanje neurona {layer} (gradijent prolazi gdje je maska 1):",
    "convention.dropout_inverted": "Isključivanje neurona je obrnuto (kao u PyTorchu): pri učenju se zadržane aktivacije skaliraju s 1/(1 − p), pri evaluaciji sloj je identiteta.",
    "convention.dropout_plain": "Isključivanje neurona bez skaliranja pri učenju (udžbenički oblik): pri evaluaciji aktivacije se skaliraju s 1 − p.",
    "convention.dropout_eval": "Isključivanje neurona {layer} je u načinu evaluacije.",
    "mistake.dropout_plain": "isključivanje neurona bez skaliranja s 1/(1 − p) pri učenju (udžbenički oblik)",
    "mistake.dropout_inverted": "obrnuto isključivanje neurona: zadržane jedinice skalirane s 1/(1 − p) pri učenju (PyTorch)",
    # global max pooling
    "forward.global_max_pool": "Globalno sažimanje maksimumom (zasebno za svaku mapu značajki):",
    "backward.global_max_pool": "Unatražni prolaz kroz globalno sažimanje maksimumom: gradijent svake mape ide njezinu maksimumu (maska M):",
    # embedding
    "forward.embedding": "Ugrađivanje {layer}: retci matrice W odabrani indeksima (retci jednojedinične kodne riječi puta W):",
    "backward.embedding": "Gradijent ugrađivanja {layer}: svaki redak gradijenta dodaje se retku matrice W iz kojeg je došao (indeksi nemaju gradijent):",
    "convention.embedding_padding": "Ugrađivanje {layer}: redak {index} je redak nadopune (indeks nadopune u PyTorchu) i nema gradijent.",
    "convention.weights_in_out": "Težine su spremljene kao ulaz × izlaz, kao na kolegijima tradicije Andrewa Nga / MIT 6.036: $\\mathbf{{z}} = \\mathbf{{W}}^\\top \\mathbf{{x}} + \\mathbf{{b}}$; W, njegov gradijent $\\partial L/\\partial \\mathbf{{W}} = \\mathbf{{x}}\\, \\partial L/\\partial \\mathbf{{z}}$ i ažuriranja daju se u tom rasporedu (W u PyTorchu je njihov transponat).",
    # skalirana pažnja
    "forward.attention": "Pažnja sa skaliranim produktom {layer} (jedna glava), softmax(QKᵀ/√d)V kao u PyTorchu. {details}",
    "attention.projections": "Upiti, ključevi i vrijednosti: projekcije ulaza X (težine spremljene kao izlaz × ulaz, kao u PyTorchu):",
    "attention.scores": "Ocjene: skalirani skalarni produkti upita s ključevima:",
    "attention.weights": "Težine pažnje: softmax svakog retka ocjena:",
    "attention.weights_masked": "Težine pažnje: softmax svakog retka ocjena po ključevima koje maska dopušta (maskirani položaj vrijedi kao ocjena −∞, pa mu je težina 0):",
    "attention.output": "Izlaz: svaki redak je prosjek vrijednosti otežan njegovim težinama pažnje:",
    "backward.attention": "Unatražni prolaz kroz pažnju {layer}:",
    "attention.softmax_backward": "Kroz softmax svakog retka (rowsum zbraja elemente retka):",
    "attention.input_backward": "Ulaz X ulazi u upite, ključeve i vrijednosti, pa njegov gradijent ima tri dijela:",
}
