/** The exported page: a file picker, a status line, and one row per embedded frame with its nearest neighbours. */
export const SITE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tempo-ssl encoder in the browser</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
.muted{color:#777}.row{display:flex;gap:8px;align-items:flex-start;margin:10px 0;border-top:1px solid #eee;padding-top:8px}
figure{margin:0;font-size:11px;width:104px}figure img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc}
figure.query img{border:2px solid #000}
</style></head>
<body>
<h1>Encoder in the browser</h1>
<p class="muted">Pick a local image or video: its frames are embedded here, by TensorFlow.js in this page (nothing is uploaded), and
each is shown with its nearest neighbours among the embeddings exported with the page.</p>
<p><input type="file" id="file" accept="image/*,video/*" disabled> <span id="status">loading the encoder...</span></p>
<div id="results"></div>
<script src="tf.min.js"></script>
<script src="model.js"></script>
<script src="embeddings.js"></script>
<script src="app.js"></script>
</body></html>
`;

/**
 * The page's script (plain browser JavaScript): loads the encoder from `model.js` with `tf.io.fromMemory`, embeds
 * a picked image (resized to cover the input, centre-cropped, pixels / 255, as `pretrain --images` prepares
 * images) or 8 frames spread over a picked video, and lists each frame's 8 nearest exported embeddings by cosine
 * similarity. `?backend=cpu` picks a TensorFlow.js backend; `window.tempo` exposes the embeddings for tests.
 */
export const SITE_SCRIPT = `(async function () {
  var status = document.getElementById('status');
  var input = document.getElementById('file');
  var results = document.getElementById('results');
  var wanted = new URLSearchParams(location.search).get('backend');
  if (wanted) await tf.setBackend(wanted);
  await tf.ready();
  var m = window.TEMPO_MODEL;
  var bytes = Uint8Array.from(atob(m.weightData), function (c) { return c.charCodeAt(0); });
  var model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: m.modelTopology, weightSpecs: m.weightSpecs, weightData: bytes.buffer })
  );
  var shape = model.inputs[0].shape.slice(1), H = shape[0], W = shape[1], C = shape[2];
  var bank = window.TEMPO_EMBEDDINGS.items.map(function (item) {
    var norm = Math.hypot.apply(null, item.embedding) || 1;
    return { item: item, unit: item.embedding.map(function (v) { return v / norm; }) };
  });
  var canvas = document.createElement('canvas');
  canvas.width = W;
  canvas.height = H;
  var ctx = canvas.getContext('2d', { willReadFrequently: true });

  function pixelsOf(source, sw, sh) {
    var scale = Math.max(W / sw, H / sh), dw = sw * scale, dh = sh * scale;
    ctx.clearRect(0, 0, W, H);
    ctx.drawImage(source, (W - dw) / 2, (H - dh) / 2, dw, dh);
    var rgba = ctx.getImageData(0, 0, W, H).data, out = new Float32Array(W * H * C);
    for (var i = 0; i < W * H; i++) {
      if (C === 3) for (var k = 0; k < 3; k++) out[i * 3 + k] = rgba[i * 4 + k] / 255;
      else out[i] = Math.round(0.299 * rgba[i * 4] + 0.587 * rgba[i * 4 + 1] + 0.114 * rgba[i * 4 + 2]) / 255;
    }
    return out;
  }
  function embed(pixels) {
    return Array.from(tf.tidy(function () { return model.predict(tf.tensor4d(pixels, [1, H, W, C])).dataSync(); }));
  }
  function nearest(embedding, k) {
    var norm = Math.hypot.apply(null, embedding) || 1;
    return bank
      .map(function (b) {
        var dot = 0;
        for (var d = 0; d < embedding.length; d++) dot += (embedding[d] / norm) * b.unit[d];
        return { item: b.item, similarity: dot };
      })
      .sort(function (a, b) { return b.similarity - a.similarity; })
      .slice(0, k);
  }
  function figure(src, text, cls) {
    var f = document.createElement('figure');
    if (cls) f.className = cls;
    var img = document.createElement('img');
    img.src = src;
    var cap = document.createElement('figcaption');
    cap.textContent = text;
    f.appendChild(img);
    f.appendChild(cap);
    return f;
  }
  function show(title, embedding) {
    var row = document.createElement('div');
    row.className = 'row';
    row.appendChild(figure(canvas.toDataURL(), title, 'query'));
    nearest(embedding, 8).forEach(function (n, k) {
      row.appendChild(figure(n.item.thumbnail, k + 1 + '. ' + n.item.caption + ' (' + n.similarity.toFixed(2) + ')'));
    });
    results.appendChild(row);
  }
  var tempo = (window.tempo = { backend: tf.getBackend(), inputShape: shape, embeddings: [], done: 0 });

  async function embedImage(file) {
    var img = new Image();
    img.src = URL.createObjectURL(file);
    await img.decode();
    var embedding = embed(pixelsOf(img, img.naturalWidth, img.naturalHeight));
    tempo.embeddings.push(embedding);
    show(file.name, embedding);
  }
  async function embedVideo(file) {
    var video = document.createElement('video');
    video.muted = true;
    video.src = URL.createObjectURL(file);
    await new Promise(function (resolve, reject) { video.onloadeddata = resolve; video.onerror = reject; });
    for (var k = 0; k < 8; k++) {
      var t = ((k + 0.5) / 8) * video.duration;
      video.currentTime = t;
      await new Promise(function (resolve) { video.onseeked = resolve; });
      var embedding = embed(pixelsOf(video, video.videoWidth, video.videoHeight));
      tempo.embeddings.push(embedding);
      show(file.name + ' @ ' + t.toFixed(2) + ' s', embedding);
    }
  }
  input.addEventListener('change', async function () {
    for (var i = 0; i < input.files.length; i++) {
      var file = input.files[i];
      status.textContent = 'embedding ' + file.name + '...';
      try {
        if (file.type.indexOf('video/') === 0) await embedVideo(file);
        else await embedImage(file);
        status.textContent = 'embedded ' + file.name;
      } catch (error) {
        status.textContent = 'could not read ' + file.name + ': ' + (error && error.message ? error.message : error);
      }
      tempo.done++;
    }
  });
  input.disabled = false;
  status.textContent = 'ready: ' + W + 'x' + H + ' input, ' + bank.length + ' embeddings to search, backend ' + tf.getBackend();
  tempo.ready = true;
})().catch(function (error) {
  document.getElementById('status').textContent = 'error: ' + error.message;
  console.error(error);
});
`;
