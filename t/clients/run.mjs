// The official SDKs, unmodified: only the base URL points at the gateway,
// and the API key is one the gateway maps to a user.  Prints one JSON
// line per call: what the SDK returned, including the usage it saw.
//
//   node run.mjs http://127.0.0.1:PORT

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const base = process.argv[2];
const out = (name, v) => console.log(JSON.stringify({ name, ...v }));

const openai = new OpenAI({ apiKey: 'sk-alice', baseURL: `${base}/v1`,
                            maxRetries: 0 });
const anthropic = new Anthropic({ apiKey: 'sk-ant-bob', baseURL: base,
                                  maxRetries: 0 });

try {
    const c = await openai.chat.completions.create({
        model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }] });
    out('openai', { text: c.choices[0].message.content, usage: c.usage });

    const s = await openai.chat.completions.create({
        model: 'gpt-4o', stream: true,
        messages: [{ role: 'user', content: 'Hello' }] });
    let text = '', usage = null;
    for await (const chunk of s) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (chunk.usage) usage = chunk.usage;
    }
    out('openai-stream', { text, usage });

    const m = await anthropic.messages.create({
        model: 'claude-haiku-4-5', max_tokens: 100,
        messages: [{ role: 'user', content: 'Hello' }] });
    out('anthropic', { text: m.content[0].text, usage: m.usage });

    const ms = anthropic.messages.stream({
        model: 'claude-haiku-4-5', max_tokens: 100,
        messages: [{ role: 'user', content: 'Hello' }] });
    const final = await ms.finalMessage();
    out('anthropic-stream', { text: final.content[0].text,
                              usage: final.usage });

    try {
        await openai.chat.completions.create({
            model: 'o1-pro', messages: [{ role: 'user', content: 'Hello' }] });
        out('refused', { error: null });
    } catch (e) {
        out('refused', { status: e.status, code: e.code,
                         message: e.message });
    }
} catch (e) {
    out('error', { message: String(e), status: e.status });
    process.exit(1);
}
