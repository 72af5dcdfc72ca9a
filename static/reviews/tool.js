// The review tool: wires Annotorious (drawing and editing boxes and polygons) to the page's shapes, classes, keys,
// confidence filter, undo history, zoom and pan, and saving with optimistic locking.
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("review-data").textContent);
  const tool = document.getElementById("tool");
  const stage = document.getElementById("stage");
  const canvas = document.getElementById("canvas");
  const image = document.getElementById("tool-image");
  const labelLayer = document.getElementById("shape-labels");
  const labels = new Map(data.labels.map((label) => [label.id, label]));
  const classification = data.type === "CLASSIFICATION";
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  const sources = ["champion", "shadow", "review"].filter((name) => sourceShapes(name) !== null);

  let nextId = 1;
  let source = data.review ? "review" : "champion";
  let shapes = withIds(sourceShapes(source));
  let threshold = data.min_threshold;
  let selected = null;
  let currentLabel = data.labels.length ? data.labels[0].id : 0;
  let baseVersion = data.version;
  let annotator = null;
  let silent = false; // set while the page itself changes Annotorious, whose events then are echoes
  let saving = false;
  const undoStack = [];
  const redoStack = [];
  const view = { scale: 1, x: 0, y: 0 };
  // Shapes are in the prediction's declared width × height; Annotorious draws in the image file's own pixels.
  // The two differ when a client declared another size than the file it sent (the API warns, and accepts it).
  const imageScale = { x: 1, y: 1 };

  function sourceShapes(name) {
    if (name === "champion") return data.champion;
    if (name === "shadow") return data.shadow;
    return data.review ? data.review.shapes : null;
  }

  function withIds(list) {
    return JSON.parse(JSON.stringify(list || [])).map((shape) => ({ ...shape, id: `shape-${nextId++}` }));
  }

  function labelOf(shape) {
    return labels.get(shape.label_id) || { name: `class ${shape.label_id}`, color: "#888888" };
  }

  function visible(shape) {
    return shape.score === null || shape.score === undefined || shape.score >= threshold;
  }

  function byId(id) {
    return shapes.find((shape) => shape.id === id);
  }

  // --- Loupe shapes <-> Annotorious annotations -------------------------------------------------------------

  function bounds(points) {
    const xs = points.map((point) => point[0]);
    const ys = points.map((point) => point[1]);
    return { minX: Math.min(...xs), minY: Math.min(...ys), maxX: Math.max(...xs), maxY: Math.max(...ys) };
  }

  function toAnnotation(shape) {
    let selector;
    if (shape.type === "rectangle") {
      const [x, y, w, h] = [shape.x * imageScale.x, shape.y * imageScale.y, shape.w * imageScale.x, shape.h * imageScale.y];
      selector = { type: "RECTANGLE", geometry: { x, y, w, h, bounds: { minX: x, minY: y, maxX: x + w, maxY: y + h } } };
    } else {
      const points = shape.points.map((point) => [point[0] * imageScale.x, point[1] * imageScale.y]);
      selector = { type: "POLYGON", geometry: { points, bounds: bounds(points) } };
    }
    return { id: shape.id, bodies: [], target: { annotation: shape.id, selector } };
  }

  const round = (value) => Math.round(value * 100) / 100;
  const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

  // Annotorious lets a shape leave the image; the server refuses that, so geometry is clipped to the frame here.
  function geometryOf(annotation) {
    const selector = annotation.target.selector;
    const geometry = selector.geometry;
    const sx = imageScale.x;
    const sy = imageScale.y;
    if (selector.type === "RECTANGLE") {
      const x = clamp(round(geometry.x / sx), 0, data.width);
      const y = clamp(round(geometry.y / sy), 0, data.height);
      return {
        type: "rectangle", x, y,
        w: Math.max(0.01, round(Math.min((geometry.x + geometry.w) / sx, data.width) - x)),
        h: Math.max(0.01, round(Math.min((geometry.y + geometry.h) / sy, data.height) - y)),
      };
    }
    return {
      type: "polygon",
      points: geometry.points.map((point) => [clamp(round(point[0] / sx), 0, data.width), clamp(round(point[1] / sy), 0, data.height)]),
    };
  }

  function sameGeometry(shape, geometry) {
    const keys = geometry.type === "rectangle" ? ["x", "y", "w", "h"] : ["points"];
    return keys.every((key) => JSON.stringify(shape[key]) === JSON.stringify(geometry[key]));
  }

  // Annotorious reports an edit when the shape is deselected; read its store so a save or a class change made
  // while a shape is still selected keeps the move, as its own undo step.
  function syncFromAnnotator() {
    if (!annotator) return;
    const moved = annotator.getAnnotations().filter((annotation) => {
      const shape = byId(annotation.id);
      return shape && !sameGeometry(shape, geometryOf(annotation));
    });
    if (!moved.length) return;
    remember();
    moved.forEach((annotation) => Object.assign(byId(annotation.id), geometryOf(annotation), { score: null }));
  }

  // --- history --------------------------------------------------------------------------------------------

  function snapshot() {
    return JSON.stringify({ shapes, source });
  }

  function remember() {
    undoStack.push(snapshot());
    if (undoStack.length > 200) undoStack.shift();
    redoStack.length = 0;
  }

  function change(mutate) {
    syncFromAnnotator();
    remember();
    mutate();
    redraw();
  }

  function restore(from, to) {
    syncFromAnnotator();
    if (!from.length) return;
    to.push(snapshot());
    ({ shapes, source } = JSON.parse(from.pop()));
    if (selected && !byId(selected)) selected = null;
    redraw();
  }

  // --- drawing --------------------------------------------------------------------------------------------

  // Annotorious's style option writes a style attribute, which the Content-Security-Policy refuses; the class
  // colour goes instead through a CSS custom property set on each shape's element (CSSOM, which CSP allows).
  function colorShapes() {
    annotator.element.querySelectorAll("g[data-id]").forEach((group) => {
      const shape = byId(group.dataset.id);
      if (shape) group.style.setProperty("--shape-color", labelOf(shape).color);
    });
  }

  // Annotorious 3.8's setFilter is a stub ("not implemented yet"): shapes under the cut are simply not given to it.
  function redraw() {
    if (annotator) {
      silent = true;
      annotator.setAnnotations(shapes.filter((shape) => shape.type !== "classification" && visible(shape)).map(toAnnotation), true);
      if (selected && byId(selected)) annotator.setSelected(selected);
      silent = false;
      colorShapes();
      requestAnimationFrame(colorShapes); // Annotorious renders on its own tick
    }
    render();
  }

  function render() {
    const shown = shapes.filter(visible);
    // Labels and scores: Annotorious draws no text, so a layer of chips sits over the image, in its coordinates.
    // Past a hundred shapes the chips would hide the image: only the selected shape keeps its chip then.
    const chipped = shown.filter((shape) => shape.type !== "classification" && (shown.length <= 100 || shape.id === selected));
    labelLayer.replaceChildren(...chipped.map((shape) => {
      const chip = document.createElement("span");
      const label = labelOf(shape);
      const box = shape.type === "rectangle" ? { minX: shape.x, minY: shape.y } : bounds(shape.points);
      chip.className = "shape-label" + (shape.id === selected ? " selected" : "");
      chip.textContent = shape.score == null ? label.name : `${label.name} ${shape.score.toFixed(2)}`;
      chip.style.setProperty("--x", String(box.minX));
      chip.style.setProperty("--y", String(box.minY));
      chip.style.backgroundColor = label.color;
      return chip;
    }));
    declutterSoon();
    renderList(shown.length);
    renderClasses();
    document.querySelectorAll("[data-source]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.source === source));
    });
    const banner = document.getElementById("class-banner");
    if (banner) {
      const top = shown[0];
      banner.textContent = top ? `${labelOf(top).name}${top.score == null ? "" : " " + top.score.toFixed(2)}` : "No class over the cut: pick one (1–9)";
      banner.style.backgroundColor = top ? labelOf(top).color : "#475569";
    }
  }

  // Chips keep their screen size while the image zooms, so at a small zoom (a phone) they pile up: one that
  // would cover a chip already placed (the selected one first) is hidden until zooming in makes room.
  let declutterPending = false;

  function declutterSoon() {
    if (declutterPending) return;
    declutterPending = true;
    requestAnimationFrame(() => {
      declutterPending = false;
      const chips = Array.from(labelLayer.children);
      chips.sort((a, b) => Number(b.classList.contains("selected")) - Number(a.classList.contains("selected")));
      const placed = [];
      chips.forEach((chip) => {
        chip.classList.remove("covered");
        const box = chip.getBoundingClientRect();
        const overlaps = placed.some((other) => box.left < other.right && other.left < box.right
          && box.top < other.bottom && other.top < box.bottom);
        if (overlaps) chip.classList.add("covered");
        else placed.push(box);
      });
    });
  }

  function renderList(shownCount) {
    const list = document.getElementById("shape-list");
    list.replaceChildren(...shapes.map((shape, index) => {
      const item = document.createElement("li");
      const label = labelOf(shape);
      item.dataset.shape = shape.id;
      item.className = (visible(shape) ? "" : "below ") + (shape.id === selected ? "selected" : "");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.backgroundColor = label.color;
      const name = document.createElement("span");
      name.textContent = `${index + 1}. ${label.name}`;
      const detail = document.createElement("span");
      detail.className = "muted";
      detail.textContent = `${shape.type === "polygon" ? "polygon" : shape.type === "rectangle" ? "box" : ""} ${shape.score == null ? "edited" : shape.score.toFixed(2)}`;
      item.append(swatch, name, detail);
      return item;
    }));
    document.getElementById("shape-count").textContent = `${shownCount} shown of ${shapes.length}`;
    const hidden = shapes.length - shownCount;
    document.getElementById("hidden-count").textContent = hidden ? `${hidden} under the cut: hidden, and not saved` : "";
  }

  function renderClasses() {
    const active = selected && byId(selected) ? byId(selected).label_id
      : classification ? (shapes.find(visible) || {}).label_id : currentLabel;
    document.querySelectorAll("#class-list [data-label]").forEach((button) => {
      button.setAttribute("aria-pressed", String(Number(button.dataset.label) === active));
    });
  }

  // --- commands -------------------------------------------------------------------------------------------

  function select(id) {
    selected = id;
    if (annotator) {
      silent = true;
      if (id) annotator.setSelected(id); else annotator.cancelSelected();
      silent = false;
    }
    render();
  }

  function setClass(labelId) {
    if (!labels.has(labelId)) return;
    if (classification) {
      change(() => { shapes = [{ id: `shape-${nextId++}`, type: "classification", label_id: labelId, score: null }]; });
      return;
    }
    currentLabel = labelId;
    const shape = selected && byId(selected);
    if (shape) change(() => { shape.label_id = labelId; shape.score = null; });
    else render();
  }

  function deleteSelected() {
    if (!selected || !byId(selected)) return;
    const id = selected;
    selected = null;
    change(() => { shapes = shapes.filter((shape) => shape.id !== id); });
  }

  function setTool(name) {
    if (!annotator) return;
    if (name === "select") {
      annotator.setDrawingEnabled(false);
    } else {
      // Boxes are dragged; polygons are clicked point by point (in drag mode they would start with a drag).
      annotator.setDrawingMode(name === "polygon" ? "click" : "drag");
      annotator.setDrawingTool(name);
      annotator.setDrawingEnabled(true);
    }
    tool.dataset.mode = name;
    document.querySelectorAll("[data-tool]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.tool === name));
    });
  }

  function showSource(name) {
    if (!sources.includes(name) || name === source) return;
    selected = null;
    change(() => { source = name; shapes = withIds(sourceShapes(name)); });
  }

  function setThreshold(value) {
    threshold = value;
    document.getElementById("threshold-value").textContent = value.toFixed(2);
    syncFromAnnotator();
    if (selected && !visible(byId(selected))) selected = null;
    redraw();
  }

  function outgoing() {
    return shapes.filter(visible).map(({ id, ...shape }) => {
      if (shape.score == null) delete shape.score;
      return shape;
    });
  }

  function say(text) {
    document.getElementById("tool-message").textContent = text;
  }

  async function save(kind) {
    if (saving || data.status === "SUBMITTED") return;
    syncFromAnnotator();
    saving = true;
    tool.dataset.saving = "1";
    say("Saving…");
    const mine = outgoing();
    try {
      const response = await fetch(data.save_url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ shapes: mine, expected_version: baseVersion, kind }),
      });
      const body = await response.json().catch(() => ({ message: `the server answered ${response.status}` }));
      if (response.ok) {
        say("Saved");
        window.location.assign(data.next_url);
        return;
      }
      if (response.status === 409) conflict(body, mine, kind);
      else say(body.errors && body.errors.length ? body.errors.map((error) => `${error.field}: ${error.message}`).join("; ") : body.message);
    } catch (error) {
      say(`Not saved: ${error.message}`);
    } finally {
      saving = false;
      delete tool.dataset.saving;
    }
  }

  // --- conflict dialog: both versions drawn small, side by side --------------------------------------------

  function picture(svg, list) {
    const ns = "http://www.w3.org/2000/svg";
    svg.setAttribute("viewBox", `0 0 ${data.width} ${data.height}`);
    const background = document.createElementNS(ns, "image");
    background.setAttribute("href", image.currentSrc || image.src);
    background.setAttribute("width", data.width);
    background.setAttribute("height", data.height);
    background.setAttribute("preserveAspectRatio", "none"); // stretched like the tool's image, whatever its own size
    const drawn = (list || []).filter((shape) => shape.type !== "classification").map((shape) => {
      const element = document.createElementNS(ns, shape.type === "rectangle" ? "rect" : "polygon");
      if (shape.type === "rectangle") {
        ["x", "y"].forEach((key) => element.setAttribute(key, shape[key]));
        element.setAttribute("width", shape.w);
        element.setAttribute("height", shape.h);
      } else {
        element.setAttribute("points", shape.points.map((point) => point.join(",")).join(" "));
      }
      element.setAttribute("stroke", labelOf(shape).color);
      element.setAttribute("fill", "none");
      element.setAttribute("vector-effect", "non-scaling-stroke");
      element.setAttribute("stroke-width", "2");
      return element;
    });
    svg.replaceChildren(background, ...drawn);
  }

  function describe(list) {
    const names = (list || []).map((shape) => labelOf(shape).name);
    return `${names.length} shape${names.length === 1 ? "" : "s"}${classification && names.length ? ": " + names.join(", ") : ""}`;
  }

  function conflict(body, mine, kind) {
    const dialog = document.getElementById("conflict-dialog");
    const submitted = body.status === "SUBMITTED";
    document.getElementById("conflict-message").textContent = submitted ? body.message
      : `${body.reviewed_by || "Someone"} saved version ${body.version} while you worked on version ${baseVersion}.`;
    picture(document.getElementById("conflict-theirs"), body.reviewed_shapes);
    picture(document.getElementById("conflict-yours"), mine);
    document.getElementById("conflict-theirs-count").textContent = describe(body.reviewed_shapes);
    document.getElementById("conflict-yours-count").textContent = describe(mine);
    dialog.querySelector('[value="overwrite"]').disabled = submitted;
    say("Conflict: someone else saved this asset");
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue === "theirs") window.location.assign(data.next_url);
      else if (dialog.returnValue === "overwrite") {
        baseVersion = body.version; // their version becomes the base mine replaces
        save(kind);
      }
    };
    dialog.showModal();
  }

  // --- zoom and pan: Annotorious v3 has none. Zoom sizes the image (Annotorious follows its size, so handles and
  // strokes keep their screen size; a CSS scale would magnify them); pan moves the canvas. ----------------------

  function applyView() {
    canvas.style.transform = `translate(${view.x}px, ${view.y}px)`;
    image.style.width = `${data.width * view.scale}px`;
    image.style.height = `${data.height * view.scale}px`;
    canvas.style.setProperty("--zoom", String(view.scale)); // places the chips, which keep their screen size
    document.getElementById("zoom-chip").textContent = `${Math.round(view.scale * 100)}%`;
    declutterSoon();
  }

  function fit() {
    const box = stage.getBoundingClientRect();
    view.scale = Math.min(box.width / data.width, box.height / data.height);
    view.x = (box.width - data.width * view.scale) / 2;
    view.y = (box.height - data.height * view.scale) / 2;
    applyView();
  }

  function zoomAt(factor, clientX, clientY) {
    const box = stage.getBoundingClientRect();
    const px = clientX - box.left;
    const py = clientY - box.top;
    const scale = clamp(view.scale * factor, 0.05, 40);
    view.x = px - ((px - view.x) * scale) / view.scale;
    view.y = py - ((py - view.y) * scale) / view.scale;
    view.scale = scale;
    applyView();
  }

  function zoomCentre(factor) {
    const box = stage.getBoundingClientRect();
    zoomAt(factor, box.left + box.width / 2, box.top + box.height / 2);
  }

  let spaceHeld = false;
  let pan = null;

  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
  }, { passive: false });

  // Two fingers pinch to zoom about their midpoint (one finger on the empty image pans, as the mouse does).
  const touches = new Map();
  let pinch = null;

  function touchSpread() {
    const [a, b] = Array.from(touches.values());
    return { distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  }

  stage.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "touch") return;
    touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (touches.size === 2) {
      pan = null;
      pinch = touchSpread();
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  window.addEventListener("pointermove", (event) => {
    if (!touches.has(event.pointerId)) return;
    touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (!pinch || touches.size !== 2) return;
    const now = touchSpread();
    zoomAt(now.distance / pinch.distance, now.x, now.y);
    view.x += now.x - pinch.x;
    view.y += now.y - pinch.y;
    applyView();
    pinch = now;
  });

  function touchEnd(event) {
    touches.delete(event.pointerId);
    if (touches.size < 2) pinch = null;
  }
  window.addEventListener("pointerup", touchEnd);
  window.addEventListener("pointercancel", touchEnd);

  // Capture phase: a pan must start before Annotorious sees the press (it would deselect or start drawing).
  stage.addEventListener("pointerdown", (event) => {
    if (pinch) return;
    const onShape = event.target.closest && event.target.closest(".a9s-annotation, .a9s-handle, .a9s-polygon-midpoint");
    const emptyInSelect = event.button === 0 && (tool.dataset.mode || "select") === "select" && !onShape;
    if (!(event.button === 1 || (event.button === 0 && spaceHeld) || emptyInSelect || classification)) return;
    pan = { x: event.clientX, y: event.clientY, startX: view.x, startY: view.y, moved: false, id: event.pointerId };
    if (event.button === 1 || spaceHeld) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  window.addEventListener("pointermove", (event) => {
    if (!pan || event.pointerId !== pan.id) return;
    const dx = event.clientX - pan.x;
    const dy = event.clientY - pan.y;
    if (!pan.moved && Math.hypot(dx, dy) < 4) return;
    pan.moved = true;
    stage.classList.add("panning");
    view.x = pan.startX + dx;
    view.y = pan.startY + dy;
    applyView();
  });

  window.addEventListener("pointerup", () => {
    pan = null;
    stage.classList.remove("panning");
    // Annotorious reports an edit only when the shape is deselected: read its store after each gesture, so the
    // list and the chips follow at once and each drag is its own undo step.
    if (annotator) {
      requestAnimationFrame(() => {
        const steps = undoStack.length;
        syncFromAnnotator();
        if (undoStack.length !== steps) render();
      });
    }
  });

  // --- keyboard -------------------------------------------------------------------------------------------

  function typing(event) {
    const target = event.target;
    return target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT"
      || (target.tagName === "INPUT" && target.type !== "range" && target.type !== "checkbox");
  }

  // Capture phase on window: the page decides before Annotorious's own key handlers (its history, its point delete).
  window.addEventListener("keydown", (event) => {
    if (typing(event) || document.querySelector("dialog[open]")) return;
    const key = event.key;
    if ((event.ctrlKey || event.metaKey) && ["z", "y"].includes(key.toLowerCase())) {
      // Annotorious binds these keys to its own history, which knows only part of the edits.
      event.stopPropagation();
    }
    if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") {
      event.preventDefault();
      if (event.shiftKey) restore(redoStack, undoStack); else restore(undoStack, redoStack);
      return;
    }
    if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "y") {
      event.preventDefault();
      restore(redoStack, undoStack);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (key === " ") {
      spaceHeld = true;
      stage.classList.add("pan-ready");
      event.preventDefault();
      return;
    }
    if (/^[1-9]$/.test(key)) {
      const label = data.labels[Number(key) - 1];
      if (label) setClass(label.id);
      return;
    }
    if (key === "Delete" || key === "Backspace") {
      // With polygon points selected, Annotorious's own handler removes those points, not the shape.
      if (document.querySelector(".a9s-handle-dot.selected, .a9s-handle-selected")) return;
      event.preventDefault();
      event.stopPropagation();
      deleteSelected();
      return;
    }
    if (key === "Tab") {
      const shown = shapes.filter((shape) => visible(shape) && shape.type !== "classification");
      if (!shown.length) return;
      event.preventDefault();
      const index = shown.findIndex((shape) => shape.id === selected);
      select(shown[(index + (event.shiftKey ? shown.length - 1 : 1)) % shown.length].id);
      return;
    }
    const commands = {
      a: () => save("accept"),
      r: () => save("review"),
      n: () => window.location.assign(data.next_url),
      v: () => setTool("select"),
      b: () => setTool("rectangle"),
      p: () => setTool("polygon"),
      s: () => showSource(sources[(sources.indexOf(source) + 1) % sources.length]),
      h: () => stage.classList.add("shapes-hidden"),
      "?": () => document.getElementById("help-dialog").showModal(),
      "+": () => zoomCentre(1.25),
      "=": () => zoomCentre(1.25),
      "-": () => zoomCentre(0.8),
      0: fit,
      Escape: () => { if (annotator) annotator.cancelDrawing(); setTool("select"); select(null); },
    };
    if (commands[key]) {
      event.preventDefault();
      commands[key]();
    }
  }, true);

  document.addEventListener("keyup", (event) => {
    if (event.key === " ") {
      spaceHeld = false;
      stage.classList.remove("pan-ready");
    } else if (event.key === "h") {
      stage.classList.remove("shapes-hidden");
    }
  });

  // --- panel ----------------------------------------------------------------------------------------------

  document.querySelectorAll(".swatch[data-color]").forEach((swatch) => { swatch.style.backgroundColor = swatch.dataset.color; });
  document.getElementById("class-list").addEventListener("click", (event) => {
    const button = event.target.closest("[data-label]");
    if (button) setClass(Number(button.dataset.label));
  });
  document.getElementById("shape-list").addEventListener("click", (event) => {
    const item = event.target.closest("[data-shape]");
    if (item && visible(byId(item.dataset.shape))) select(item.dataset.shape);
  });
  document.querySelectorAll("[data-tool]").forEach((button) => button.addEventListener("click", () => setTool(button.dataset.tool)));
  document.querySelectorAll("[data-source]").forEach((button) => button.addEventListener("click", () => showSource(button.dataset.source)));
  document.querySelector('[data-command="accept"]').addEventListener("click", () => save("accept"));
  document.querySelector('[data-command="review"]').addEventListener("click", () => save("review"));
  document.querySelector('[data-command="help"]').addEventListener("click", () => document.getElementById("help-dialog").showModal());
  const slider = document.getElementById("threshold");
  slider.addEventListener("input", () => setThreshold(Number(slider.value)));
  window.addEventListener("resize", fit);

  // --- start ----------------------------------------------------------------------------------------------

  function start() {
    imageScale.x = image.naturalWidth / data.width;
    imageScale.y = image.naturalHeight / data.height;
    fit();
    if (!classification) {
      annotator = window.Annotorious.createImageAnnotator(image, { drawingEnabled: false });
      // Stretched over the image like the image over its declared size, so the axes scale apart as Annotorious
      // maps pointer positions (it would letterbox a file whose proportions differ from the declared ones).
      annotator.element.querySelectorAll("svg").forEach((svg) => svg.setAttribute("preserveAspectRatio", "none"));
      new MutationObserver(colorShapes).observe(annotator.element, { childList: true, subtree: true });
      annotator.on("createAnnotation", (annotation) => {
        if (silent) return;
        remember();
        shapes.push({ id: annotation.id, label_id: currentLabel, score: null, ...geometryOf(annotation) });
        selected = annotation.id;
        render();
      });
      annotator.on("updateAnnotation", (annotation) => {
        const shape = byId(annotation.id);
        if (silent || !shape) return;
        const geometry = geometryOf(annotation);
        if (sameGeometry(shape, geometry)) return;
        remember();
        Object.assign(shape, geometry, { score: null });
        render();
      });
      annotator.on("deleteAnnotation", (annotation) => {
        if (silent || !byId(annotation.id)) return;
        remember();
        shapes = shapes.filter((shape) => shape.id !== annotation.id);
        render();
      });
      annotator.on("selectionChanged", (selection) => {
        if (silent) return;
        selected = selection.length ? selection[0].id : null;
        render();
      });
    }
    setThreshold(threshold);
    requestAnimationFrame(() => {
      performance.mark("review-tool-ready");
      tool.dataset.ready = "1";
    });
  }

  if (data.status === "SUBMITTED") say("Submitted to the feedback loop: its review can no longer change");
  performance.mark("review-tool-start");
  if (image.complete && image.naturalWidth) start();
  else image.addEventListener("load", start, { once: true });
})();
