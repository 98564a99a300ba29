/** Ten distinct colours (Tableau 10), cycled for more classes. */
export const PALETTE: readonly string[] = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

/**
 * The report's only script (plain browser JavaScript, inlined): draws the map's points from the `map-data` JSON,
 * shows a point's thumbnail on hover, and its nearest neighbours in the gallery on click (the first point at start).
 */
export const MAP_SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('map-data').textContent);
  var palette = ${JSON.stringify(PALETTE)};
  var svg = document.getElementById('map-svg');
  var tooltip = document.getElementById('tooltip');
  var gallery = document.getElementById('gallery-items');
  var points = data.points;
  var xs = points.map(function (p) { return p.x; }), ys = points.map(function (p) { return p.y; });
  var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
  var size = 560, pad = 12;
  var sx = function (x) { return pad + ((x - x0) / ((x1 - x0) || 1)) * (size - 2 * pad); };
  var sy = function (y) { return size - pad - ((y - y0) / ((y1 - y0) || 1)) * (size - 2 * pad); };
  var circles = points.map(function (p, i) {
    var c = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    c.setAttribute('cx', sx(p.x).toFixed(1));
    c.setAttribute('cy', sy(p.y).toFixed(1));
    c.setAttribute('r', points.length > 1000 ? 3 : 4);
    c.setAttribute('fill', palette[p.label % palette.length]);
    c.setAttribute('data-index', i);
    c.addEventListener('mouseenter', function (e) {
      tooltip.innerHTML = '';
      var img = document.createElement('img');
      img.src = p.thumbnail;
      tooltip.appendChild(img);
      tooltip.appendChild(document.createElement('br'));
      tooltip.appendChild(document.createTextNode(p.caption + ' (' + data.classes[p.label] + ')'));
      tooltip.style.left = e.clientX + 12 + 'px';
      tooltip.style.top = e.clientY + 12 + 'px';
      tooltip.hidden = false;
    });
    c.addEventListener('mouseleave', function () { tooltip.hidden = true; });
    c.addEventListener('click', function () { pick(i); });
    svg.appendChild(c);
    return c;
  });
  function figure(p, text, cls) {
    var f = document.createElement('figure');
    if (cls) f.className = cls;
    var img = document.createElement('img');
    img.src = p.thumbnail;
    f.appendChild(img);
    var cap = document.createElement('figcaption');
    cap.textContent = text;
    f.appendChild(cap);
    return f;
  }
  var picked = -1;
  function pick(i) {
    if (picked >= 0) circles[picked].classList.remove('picked');
    picked = i;
    circles[i].classList.add('picked');
    gallery.innerHTML = '';
    var q = points[i];
    gallery.appendChild(figure(q, 'query: ' + q.caption, 'query'));
    q.neighbours.forEach(function (j, k) {
      gallery.appendChild(figure(points[j], (k + 1) + '. ' + points[j].caption + ' (' + q.similarities[k].toFixed(2) + ')'));
    });
  }
  if (points.length > 0) pick(0);
})();
`;
