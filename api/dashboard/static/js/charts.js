// plotly.js is loaded only when a chart is first drawn (it is large; Today draws none), from the API's own copy of
// the plotly wheel's file.

let loading = null;

export function plotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = document.querySelector('meta[name="healthpipe-plotly"]').content;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { loading = null; reject(new Error("the chart library could not be loaded")); };
      document.head.append(script);
    });
  }
  return loading;
}

// The top margin leaves room for plotly's mode bar (shown on hover, top right), so it never covers the highest bars.
const LAYOUT = {
  margin: { l: 56, r: 16, t: 40, b: 48 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  font: { family: "system-ui, sans-serif", size: 13, color: "#1b1f24" },
  legend: { orientation: "h", y: -0.2 }, hovermode: "x unified",
};

export async function draw(node, traces, layout = {}) {
  const Plotly = await plotly();
  await Plotly.react(node, traces, { ...LAYOUT, ...layout }, { responsive: true, displaylogo: false, displayModeBar: "hover" });
}
