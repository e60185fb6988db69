// The cases of t/prices_diff.t, each with the price @pydantic/genai-prices
// gives it: for every model of conf/prices.json that the database knows,
// each dialect that serves it and a grid of usage shapes, the usage
// object the provider returns and calcPrice(extractUsage(response)) in
// micro-USD, rounded up as tokenguard rounds.
//
//   node t/prices_diff.mjs conf/prices.json > cases.json
//
// The package is the one tools/prices pins (make prices installs it).

import fs from 'node:fs';

const top = new URL('..', import.meta.url);
const gp = await import(new URL(
  'tools/prices/node_modules/@pydantic/genai-prices/dist/index.js', top));

const table = JSON.parse(fs.readFileSync(process.argv[2]));
const now = new Date();
const cases = [];
const skipped = [];

function provider(id) {
  return gp.findProvider({ providerId: id });
}

// the price set in force now, as the database picks it
function inForce(prices) {
  if (!Array.isArray(prices)) return prices;
  for (let i = prices.length - 1; i >= 0; i--) {
    if (!prices[i].from || now >= new Date(prices[i].from)) return prices[i];
  }
  return prices[0];
}

// the thresholds of a price set's tiers
function thresholds(p) {
  const t = new Set();
  for (const v of Object.values(p)) {
    if (typeof v === 'object') v.tiers.forEach((x) => t.add(x.start));
  }
  return [...t].sort((a, b) => a - b);
}

// usage shapes: {in, out, cached, write5m, write1h, write, reasoning,
// audioIn, audioOut, cachedAudio, image, searches}
function shapes(p, dialect) {
  const s = [
    ['plain', { in: 1000, out: 500 }],
    ['cached', { in: 3000, cached: 1000, out: 200 }],
    ['reasoning', { in: 1200, out: 900, reasoning: 600 }],
  ];
  if (dialect === 'messages') {
    s.push(['write_5m', { in: 5000, write: 4000, write5m: 4000, out: 300 }]);
    s.push(['write_1h', { in: 5000, write: 4000, write1h: 4000, out: 300 }]);
    s.push(['write_mixed', { in: 9000, cached: 2000, write: 4000,
                             write5m: 1000, write1h: 3000, out: 300 }]);
    s.push(['web_search', { in: 1000, out: 100, searches: 3 }]);
  }
  if (dialect !== 'messages' && p.cache_write_mtok !== undefined) {
    s.push(['write', { in: 5000, write: 4000, out: 300 }]);
  }
  if ((dialect === 'chat' || dialect === 'gemini')
      && p.input_audio_mtok !== undefined) {
    s.push(['audio', { in: 2000, audioIn: 700, out: 400, audioOut: 150 }]);
    // only Gemini reports cached audio apart
    if (dialect === 'gemini' && p.cache_audio_read_mtok !== undefined) {
      s.push(['audio_cached', { in: 2000, audioIn: 700, cached: 900,
                                cachedAudio: 300, out: 100 }]);
    }
  }
  if (dialect === 'gemini' && p.input_image_mtok !== undefined) {
    s.push(['image', { in: 2000, image: 1200, out: 100 }]);
  }
  for (const t of thresholds(p)) {
    s.push([`tier_${t}`, { in: t, cached: 1000, out: 700 }]);
    s.push([`tier_${t}+1`, { in: t + 1, cached: 1000, out: 700 }]);
    if (dialect === 'messages') {
      s.push([`tier_${t}+1_write_1h`, { in: t + 1, write: 2000,
                                        write1h: 2000, out: 700 }]);
    }
  }
  return s;
}

// the usage object of each dialect's response
function usage(dialect, u) {
  const v = (x) => x ?? 0;
  if (dialect === 'chat') {
    const r = { prompt_tokens: u.in, completion_tokens: u.out,
                total_tokens: u.in + u.out,
                prompt_tokens_details: { cached_tokens: v(u.cached) },
                completion_tokens_details: { reasoning_tokens:
                                             v(u.reasoning) } };
    if (u.write) r.prompt_tokens_details.cache_write_tokens = u.write;
    if (u.audioIn) r.prompt_tokens_details.audio_tokens = u.audioIn;
    if (u.audioOut) r.completion_tokens_details.audio_tokens = u.audioOut;
    return r;
  }
  if (dialect === 'responses') {
    const r = { input_tokens: u.in, output_tokens: u.out,
                total_tokens: u.in + u.out,
                input_tokens_details: { cached_tokens: v(u.cached) },
                output_tokens_details: { reasoning_tokens:
                                         v(u.reasoning) } };
    if (u.write) r.input_tokens_details.cache_write_tokens = u.write;
    return r;
  }
  if (dialect === 'messages') {
    const r = { input_tokens: u.in - v(u.cached) - v(u.write),
                cache_read_input_tokens: v(u.cached),
                cache_creation_input_tokens: v(u.write),
                output_tokens: u.out };
    if (u.write) {
      r.cache_creation = { ephemeral_5m_input_tokens: v(u.write5m),
                           ephemeral_1h_input_tokens: v(u.write1h) };
    }
    if (u.searches) r.server_tool_use = { web_search_requests: u.searches };
    return r;
  }
  // gemini: thoughts are reported apart from the candidates
  const r = { promptTokenCount: u.in,
              candidatesTokenCount: u.out - v(u.reasoning),
              totalTokenCount: u.in + u.out };
  if (u.reasoning) r.thoughtsTokenCount = u.reasoning;
  if (u.cached) r.cachedContentTokenCount = u.cached;
  const details = [];
  if (u.audioIn) details.push({ modality: 'AUDIO', tokenCount: u.audioIn });
  if (u.image) details.push({ modality: 'IMAGE', tokenCount: u.image });
  if (details.length) {
    details.unshift({ modality: 'TEXT', tokenCount: u.in - v(u.audioIn)
                                                    - v(u.image) });
    r.promptTokensDetails = details;
  }
  if (u.cachedAudio) {
    r.cacheTokensDetails = [{ modality: 'TEXT',
                              tokenCount: u.cached - u.cachedAudio },
                            { modality: 'AUDIO', tokenCount: u.cachedAudio }];
  }
  if (u.audioOut) {
    r.candidatesTokensDetails = [
      { modality: 'TEXT', tokenCount: u.out - u.audioOut },
      { modality: 'AUDIO', tokenCount: u.audioOut }];
  }
  return r;
}

const DIALECTS = {
  openai: [['chat', 'chat', 'openai'], ['responses', 'responses', 'openai']],
  anthropic: [['messages', 'default', 'anthropic']],
  google: [['gemini', 'default', 'google']],
};

function request(dialect, name, stream) {
  const msgs = [{ role: 'user', content: 'hi' }];
  if (dialect === 'chat') {
    return ['/v1/chat/completions', { model: name, messages: msgs,
                                      ...(stream ? { stream: true } : {}) }];
  }
  if (dialect === 'responses') {
    return ['/v1/responses', { model: name, input: 'hi',
                               ...(stream ? { stream: true } : {}) }];
  }
  if (dialect === 'messages') {
    return ['/v1/messages', { model: name, max_tokens: 100, messages: msgs,
                              ...(stream ? { stream: true } : {}) }];
  }
  return [`/v1beta/models/${name}:`
          + (stream ? 'streamGenerateContent?alt=sse' : 'generateContent'),
          { contents: [{ parts: [{ text: 'hi' }] }] }];
}

// what the database charges for a response, the way tokenguard finds the
// model: the provider that claims the name, else the table's own
function expected(name, pid, body, extractor, flavor) {
  const u = gp.extractUsage(provider(extractor), body, flavor).usage;
  let r = gp.calcPrice(u, name, { timestamp: now });
  if (!r) r = gp.calcPrice(u, name, { providerId: pid, timestamp: now });
  return r;
}

function micro(usd) {
  const x = usd * 1e6;
  // the float sum's own error, far below a pico-dollar's granularity
  return Math.ceil(x - Math.max(1e-7, x * 1e-13));
}

for (const p of table.providers) {
  for (const m of p.models) {
    const names = [m.id];
    // a dated variant, where the database resolves one
    const dated = `${m.id}-20250929`;
    if (gp.calcPrice({ input_tokens: 1 }, dated, { timestamp: now })) {
      names.push(dated);
    }

    for (const name of names) {
      const own = gp.calcPrice({ input_tokens: 1 }, name, { timestamp: now })
        ?? gp.calcPrice({ input_tokens: 1 }, name,
                        { providerId: p.id, timestamp: now });
      if (!own) {
        skipped.push(`${p.id}/${name}: not found by the database`);
        continue;
      }
      if (name === m.id
          && (own.provider.id !== p.id || own.model.id !== m.id)) {
        skipped.push(`${p.id}/${name}: the database prices the name as`
                     + ` ${own.provider.id}/${own.model.id}`);
        continue;
      }
      if (!/^[\w.\-]+$/.test(name)) {
        skipped.push(`${p.id}/${name}: not a name a URI or JSON test can`
                     + ' carry plainly');
        continue;
      }

      const prices = inForce(m.prices);
      for (const [dialect, flavor, extractor] of DIALECTS[p.id]) {
        const grid = name === m.id ? shapes(prices, dialect)
                                   : [['plain', { in: 1000, out: 500 }]];
        for (const [shape, u] of grid) {
          // the Responses API differs from chat only in these fields
          if (dialect === 'responses'
              && !['plain', 'cached', 'reasoning', 'write'].includes(shape)) {
            continue;
          }
          for (const stream of [false, true]) {
            // streams: the richest shape of each dialect is enough
            if (stream && !['write_mixed', 'reasoning', 'audio']
              .includes(shape)) {
              continue;
            }
            const raw = usage(dialect, u);
            const body = dialect === 'gemini'
              ? { usageMetadata: raw, modelVersion: name }
              : { model: name, usage: raw };
            let r;
            try {
              r = expected(name, p.id, body, extractor, flavor);
            } catch (e) {
              skipped.push(`${p.id}/${name} ${dialect} ${shape}: the`
                           + ` database cannot price it (${e.message})`);
              continue;
            }
            if (!r) {
              skipped.push(`${p.id}/${name} ${dialect}: no price`);
              continue;
            }
            const [path, req] = request(dialect, name, stream);
            cases.push({
              name: `${p.id}/${name} ${dialect}${stream ? ' stream' : ''}`
                    + ` ${shape}`,
              path, body: req, usage: raw,
              expected: micro(r.total_price),
              expected_usd: r.total_price,
            });
          }
        }
      }
    }
  }
}

process.stdout.write(JSON.stringify({ cases, skipped }));
