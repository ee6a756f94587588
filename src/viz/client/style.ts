/** The page's CSS. `GRAPH_CSS` is also embedded into exported SVGs so they look like the page. */

export const GRAPH_CSS = `
.lv-graph text { font: 11px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; fill: #1d2433; pointer-events: none; }
.lv-graph .l1 { font-weight: 700; }
.lv-graph .l2 { fill: #4a5468; }
.lv-graph .node rect, .lv-graph .group rect.box { stroke: #7a8496; stroke-width: 1; }
.lv-graph .node rect { fill: #ffffff; }
.lv-graph .group rect.box { fill: #e8edf6; stroke: #5a6b8c; stroke-width: 1.2; }
.lv-graph .group .stack { fill: #d3dbea; stroke: #5a6b8c; stroke-width: 1; }
.lv-graph .frame > rect { fill: rgba(90, 110, 160, 0.045); stroke: #9aa6bf; stroke-width: 1; }
.lv-graph .frame .title { font-weight: 700; fill: #34405a; }
.lv-graph .frame .meta { fill: #6b7489; }
.lv-graph .toggle rect { fill: #ffffff; stroke: #5a6b8c; }
.lv-graph .toggle text { font-weight: 700; fill: #34405a; }
.lv-graph .edge { fill: none; stroke: #8791a5; stroke-width: 1.1; }
.lv-graph .edge.hl { stroke: #1f6feb; stroke-width: 2; }
.lv-graph .edge.stubbed { stroke-dasharray: 2 2; }
.lv-graph .stub { font-size: 9.5px; fill: #6b7489; font-style: italic; }
.lv-graph .stub-label { cursor: pointer; }
.lv-graph .stub-label text { pointer-events: all; }
.lv-graph .edge.ghost { stroke: #d1242f; stroke-dasharray: 4 3; }
.lv-graph .node.created rect, .lv-graph .group.created rect.box { stroke: #1a7f37; stroke-width: 3; }
.lv-graph .node.ghost { opacity: 0.55; }
.lv-graph .node.ghost rect { stroke: #d1242f; stroke-width: 2.5; stroke-dasharray: 5 3; fill: #ffebe9; }
.lv-graph .match rect, .lv-graph .group.match rect.box { stroke: #bf8700; stroke-width: 3; }
.lv-graph .selected rect, .lv-graph .group.selected rect.box, .lv-graph .frame.selected > rect { stroke: #1f6feb; stroke-width: 3; }
.lv-graph .badge rect { stroke: none; }
.lv-graph .badge text { fill: #ffffff; font-weight: 700; font-size: 10px; }
.lv-graph .dark text { fill: #ffffff; }
`;

export const PAGE_CSS = `
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 13px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2433; background: #f6f8fa; }
#app-root { height: 100%; }
#app { display: flex; flex-direction: column; height: 100%; }
header { display: flex; flex-wrap: nowrap; align-items: center; gap: 8px 12px; padding: 6px 12px; background: #ffffff; border-bottom: 1px solid #d0d7de; }
header > * { flex: none; }
header h1 { font-size: 15px; margin: 0 6px 0 0; white-space: nowrap; flex: 0 1 auto; min-width: 6em; max-width: 28em; overflow: hidden; text-overflow: ellipsis; }
header input[type=search] { flex: 0 1 240px; min-width: 8em; }
header select { flex: 0 1 auto; min-width: 7em; max-width: 16em; }
header .info { color: #57606a; font-size: 12px; flex: 1 1 0; min-width: 3em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
header .spacer { display: none; }
header input[type=search] { padding: 4px 8px; border: 1px solid #d0d7de; border-radius: 6px; }
button, select { font: inherit; padding: 3px 9px; border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa; cursor: pointer; }
button:hover { background: #eaeef2; }
button[aria-pressed=true] { background: #ddf4ff; border-color: #54aeff; }
#steps { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; padding: 4px 12px; background: #ffffff; border-bottom: 1px solid #d0d7de; font-size: 12px; }
#steps .label { color: #57606a; margin-right: 4px; }
#steps button { font-size: 12px; padding: 2px 8px; }
#steps .plus { color: #1a7f37; font-weight: 600; }
#steps .minus { color: #d1242f; font-weight: 600; }
#main { flex: 1; display: flex; min-height: 0; }
#canvas { flex: 1; position: relative; overflow: hidden; background: #ffffff; }
#canvas svg { width: 100%; height: 100%; display: block; cursor: grab; user-select: none; }
#canvas svg.panning { cursor: grabbing; }
#canvas .lv-graph .node, #canvas .lv-graph .group, #canvas .lv-graph .toggle { cursor: pointer; }
#panel { width: 360px; overflow: auto; border-left: 1px solid #d0d7de; background: #ffffff; padding: 10px 12px; }
#panel h2 { font-size: 14px; margin: 4px 0 6px; word-break: break-all; }
#panel h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; margin: 14px 0 4px; }
#panel .doc { color: #57606a; margin: 0 0 8px; }
#panel table { border-collapse: collapse; width: 100%; }
#panel td { padding: 2px 4px; vertical-align: top; border-bottom: 1px solid #eaeef2; overflow-wrap: anywhere; }
#panel .exact { color: #6e7781; white-space: nowrap; }
#panel td.k { color: #57606a; white-space: nowrap; width: 1%; word-break: normal; }
#panel .mono, #panel td.v { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12px; }
#panel ul { list-style: none; margin: 0; padding: 0; }
#panel li { padding: 2px 4px; border-bottom: 1px solid #f0f2f4; }
#panel a { color: #0969da; cursor: pointer; text-decoration: none; }
#panel a:hover { text-decoration: underline; }
#panel .muted { color: #6e7781; }
#panel details { margin-top: 10px; }
#panel summary { cursor: pointer; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; }
#panel .actions { display: flex; gap: 6px; margin: 6px 0; flex-wrap: wrap; }
#legend { position: absolute; left: 10px; bottom: 10px; background: rgba(255,255,255,0.94); border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 8px; font-size: 11px; max-width: 420px; max-height: 40%; overflow: auto; }
#legend .bar { height: 10px; width: 220px; border-radius: 2px; margin: 4px 0 2px; }
#legend .ends { display: flex; justify-content: space-between; width: 220px; }
#legend .sw { display: inline-block; width: 10px; height: 10px; border: 1px solid #7a8496; margin-right: 4px; vertical-align: -1px; }
#legend .ops { columns: 2; column-gap: 14px; }
#legend .note { color: #57606a; margin-top: 3px; }
#banner { display: none; position: absolute; top: 8px; left: 50%; transform: translateX(-50%); background: #ffebe9; border: 1px solid #d1242f; color: #82071e; padding: 6px 10px; border-radius: 6px; white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12px; max-width: 80%; z-index: 2; }
#banner.show { display: block; }
#banner.ok { background: #dafbe1; border-color: #1a7f37; color: #116329; }
#progress { position: absolute; top: 8px; right: 8px; background: #ddf4ff; border: 1px solid #54aeff; color: #0a3069; padding: 4px 10px; border-radius: 6px; font-size: 12px; z-index: 2; }
#stats { position: absolute; right: 8px; bottom: 6px; font-size: 11px; color: #6e7781; background: rgba(255, 255, 255, 0.85); padding: 1px 6px; border-radius: 4px; pointer-events: none; }
`;
