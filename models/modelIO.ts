import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, writeFileDurable } from '../core/atomicWrite.ts';
import { ModelIOError } from '../core/errors.ts';

export { writeFileAtomic } from '../core/atomicWrite.ts';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
/** Suffix of the complete-but-not-yet-renamed files of a save; a load finishes an interrupted save from them. */
const NEXT = '.next';

/**
 * model.json as written here: the standard tfjs layout (what `tf.loadLayersModel('http://.../model.json')` reads)
 * plus `weightsSha256`, which tfjs ignores and which lets a load tell a matching weights.bin from a stale one.
 */
interface ModelFileJSON extends tf.io.ModelJSON {
  weightsSha256?: string;
}

/**
 * A tfjs save handler that writes `dir/model.json` + `dir/weights.bin` in the standard tfjs layout, so the folder
 * can be served as is to a browser. Pure `@tensorflow/tfjs` has no `file://` handler in Node; this is one.
 *
 * The save is atomic for the pair: both files are written under `.next` names and fsynced, then weights.bin is renamed
 * in, then model.json. A crash between the two renames leaves model.json.next, whose weightsSha256 matches the new
 * weights.bin; {@link fileLoadHandler} finishes the rename. Assumes one writer per folder.
 *
 * @example
 * await model.save(fileSaveHandler('runs/a/encoder'));
 */
export function fileSaveHandler(dir: string): tf.io.IOHandler {
  return tf.io.withSaveHandler(async (artifacts) => {
    await writeModelFolder(dir, artifacts);
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  });
}

/**
 * A tfjs load handler that reads a folder written by {@link fileSaveHandler} (or any standard tfjs layers model:
 * model.json and the weight files its manifest names).
 *
 * @throws ModelIOError when the folder or a file is missing, model.json is not valid JSON, or the weights do not match.
 * @example
 * const model = await tf.loadLayersModel(fileLoadHandler('runs/a/encoder'));
 */
export function fileLoadHandler(dir: string): tf.io.IOHandler {
  return { load: () => readModelFolder(dir) };
}

/** Saves `model` to `dir` (created if needed) with {@link fileSaveHandler}. */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<tf.io.SaveResult> {
  return model.save(fileSaveHandler(dir));
}

/**
 * Loads a layers model from `dir` with {@link fileLoadHandler}.
 *
 * @throws ModelIOError naming the path and the fix.
 */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileLoadHandler(dir));
}

async function writeModelFolder(dir: string, artifacts: tf.io.ModelArtifacts): Promise<void> {
  if (!artifacts.modelTopology || artifacts.modelTopology instanceof ArrayBuffer) {
    throw new ModelIOError(
      dir,
      'only layers models with a JSON topology can be saved here (got a graph or no topology)',
    );
  }
  const weights = new Uint8Array(weightBuffer(artifacts.weightData));
  const modelJSON: ModelFileJSON = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    weightsSha256: sha256(weights),
  };
  try {
    await mkdir(dir, { recursive: true });
    const weightsPath = path.join(dir, WEIGHTS_BIN);
    const jsonPath = path.join(dir, MODEL_JSON);
    await writeFileDurable(weightsPath + NEXT, weights);
    await writeFileDurable(jsonPath + NEXT, JSON.stringify(modelJSON));
    // Weights first: until model.json is renamed, the old model.json still names the old weights' hash.
    await rename(weightsPath + NEXT, weightsPath);
    await rename(jsonPath + NEXT, jsonPath);
    await fsyncDir(dir);
  } catch (error) {
    throw new ModelIOError(
      dir,
      `cannot write the model: ${(error as Error).message} (check that the folder is writable)`,
      { cause: error },
    );
  }
}

async function readModelFolder(dir: string): Promise<tf.io.ModelArtifacts> {
  await checkFolder(dir);
  let modelJSON = await readModelJSON(path.join(dir, MODEL_JSON));
  let weights = await readWeights(dir, modelJSON);
  if (modelJSON.weightsSha256 && sha256(weights) !== modelJSON.weightsSha256) {
    modelJSON = await finishInterruptedSave(dir, weights);
    weights = await readWeights(dir, modelJSON);
  }
  const specs = tf.io.getWeightSpecs(modelJSON.weightsManifest);
  const expected = specs.reduce((sum, spec) => sum + byteSize(spec), 0);
  if (weights.byteLength !== expected) {
    throw new ModelIOError(
      dir,
      `the weight files hold ${weights.byteLength} bytes but model.json describes ${expected} (re-save the model)`,
    );
  }
  const data = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return tf.io.getModelArtifactsForJSON(modelJSON, () => Promise.resolve([specs, data]));
}

async function checkFolder(dir: string): Promise<void> {
  const info = await stat(dir).catch((error: unknown) => {
    throw new ModelIOError(dir, 'no such folder (check the path, or save a model there first with saveModel)', {
      cause: error,
    });
  });
  if (!info.isDirectory()) throw new ModelIOError(dir, 'not a folder (give the folder that holds model.json)');
}

async function readModelJSON(jsonPath: string): Promise<ModelFileJSON> {
  const text = await readFile(jsonPath, 'utf8').catch((error: unknown) => {
    throw new ModelIOError(jsonPath, 'missing (the folder holds no saved model; save one with saveModel)', {
      cause: error,
    });
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ModelIOError(jsonPath, `not valid JSON: ${(error as Error).message} (re-save the model)`, {
      cause: error,
    });
  }
  const json = parsed as Partial<ModelFileJSON>;
  if (typeof json !== 'object' || json === null || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ModelIOError(
      jsonPath,
      'lacks modelTopology or weightsManifest (not a tfjs layers model.json; re-save the model)',
    );
  }
  return json as ModelFileJSON;
}

/** The weight files of every manifest group, in manifest order, concatenated (as tfjs's http loader does). */
async function readWeights(dir: string, modelJSON: ModelFileJSON): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const group of modelJSON.weightsManifest) {
    for (const file of group.paths) {
      const filePath = path.join(dir, file);
      parts.push(
        await readFile(filePath).catch((error: unknown) => {
          throw new ModelIOError(
            filePath,
            'missing (model.json names it; copy it beside model.json or re-save the model)',
            { cause: error },
          );
        }),
      );
    }
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** weights.bin does not match model.json: a save stopped between its two renames. Roll it forward, or explain. */
async function finishInterruptedSave(dir: string, weights: Uint8Array): Promise<ModelFileJSON> {
  const jsonPath = path.join(dir, MODEL_JSON);
  const next = await readModelJSON(jsonPath + NEXT).catch(() => undefined);
  if (next?.weightsSha256 !== sha256(weights)) {
    throw new ModelIOError(
      dir,
      'weights.bin does not match model.json (its sha256 differs; the files come from different saves; re-save the model)',
    );
  }
  await rename(jsonPath + NEXT, jsonPath);
  await fsyncDir(dir);
  return next;
}

function weightBuffer(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (data === undefined) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(data);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const BYTES_OF: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** Bytes one manifest entry takes in the weight files (quantized entries take their quantized width). */
function byteSize(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  if (dtype === 'string') throw new ModelIOError(spec.name, 'string weights are not supported here');
  return count * (BYTES_OF[dtype] ?? 4);
}
