/*  tests/metrics/emf.mjs: a validator for CloudWatch Embedded Metric Format
    documents, written from AWS's "Specification: Embedded metric format"
    (CloudWatch User Guide), rule by rule:

    - The log event is one JSON object, with nothing before or after it,
      within the size of a CloudWatch Logs event (256 KiB: the older and
      stricter of the limits the spec has named).
    - The root has "_aws", the metadata object: "CloudWatchMetrics", an
      array of MetricDirective objects, and "Timestamp", a number of
      milliseconds since the epoch. Objects the spec defines take no other
      members.
    - A MetricDirective has "Namespace" (a string: CloudWatch allows 1 to
      255 characters, not "AWS/..."), "Dimensions" (an array of
      DimensionSets) and "Metrics" (an array of at most 100
      MetricDefinitions).
    - A DimensionSet is an array of at most 30 strings, each naming a
      target member of the root whose value is a string (CloudWatch: at
      most 1024 characters, not only spaces); names 1 to 255 characters.
    - A MetricDefinition has "Name" (naming a target member), and may have
      "Unit" (one of CloudWatch's units) and "StorageResolution" (1 or
      60).
    - A metric's target member is a number or an array of at most 100
      numbers; CloudWatch takes magnitudes from 2^-260 to 2^360 (and 0).
    A metric is not also a dimension, and a name is not defined twice in a
    directive. CloudWatch takes timestamps from two weeks past to two
    hours ahead; `now` (ms) checks that.

    validateEmf(line, { now }) returns the list of what breaks the spec
    (empty when the line is a valid document).
*/

export const UNITS = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes',
  'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second',
  'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second',
  'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
]);

export const LIMITS = {
  eventBytes: 256 * 1024,
  metricsPerDirective: 100,
  dimensionsPerSet: 30,
  valuesPerMember: 100,
  namespaceChars: 255,
  dimensionNameChars: 255,
  dimensionValueChars: 1024,
  metricNameChars: 255,
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

function extraMembers(object, allowed, where, errors) {
  for (const key of Object.keys(object))
    if (!allowed.includes(key)) errors.push(`${where} has a member the spec does not define: "${key}"`);
}

function checkValue(value, where, errors) {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude > 2 ** 360 || magnitude < 2 ** -260))
    errors.push(`${where}: ${value} is outside the magnitudes CloudWatch takes`);
}

export function validateEmf(line, { now = Date.now() } = {}) {
  const errors = [];
  if (Buffer.byteLength(line, 'utf8') > LIMITS.eventBytes)
    errors.push(`the event is ${Buffer.byteLength(line, 'utf8')} bytes, over ${LIMITS.eventBytes}`);
  let root;
  try {
    root = JSON.parse(line);
  } catch (e) {
    return [...errors, `not one JSON value: ${e.message}`];
  }
  if (!isObject(root)) return [...errors, 'the root is not a JSON object'];
  const aws = root._aws;
  if (!isObject(aws)) return [...errors, 'no "_aws" metadata object'];
  extraMembers(aws, ['CloudWatchMetrics', 'Timestamp'], '_aws', errors);
  if (!isNumber(aws.Timestamp) || !Number.isInteger(aws.Timestamp)) {
    errors.push('_aws.Timestamp is not a number of milliseconds');
  } else {
    if (aws.Timestamp < now - 14 * 86400e3) errors.push(`_aws.Timestamp ${aws.Timestamp} is over two weeks old`);
    if (aws.Timestamp > now + 2 * 3600e3) errors.push(`_aws.Timestamp ${aws.Timestamp} is over two hours ahead`);
  }
  if (!Array.isArray(aws.CloudWatchMetrics)) return [...errors, '_aws.CloudWatchMetrics is not an array'];
  aws.CloudWatchMetrics.forEach((directive, d) => {
    const where = `CloudWatchMetrics[${d}]`;
    if (!isObject(directive)) {
      errors.push(`${where} is not an object`);
      return;
    }
    extraMembers(directive, ['Namespace', 'Dimensions', 'Metrics'], where, errors);
    const ns = directive.Namespace;
    if (typeof ns !== 'string' || ns.length < 1 || ns.length > LIMITS.namespaceChars || ns.trim() === '')
      errors.push(`${where}.Namespace is not a string of 1 to ${LIMITS.namespaceChars} characters`);
    else if (ns.startsWith('AWS/')) errors.push(`${where}.Namespace "${ns}" is AWS's own`);
    const dimensionNames = new Set();
    if (!Array.isArray(directive.Dimensions)) {
      errors.push(`${where}.Dimensions is not an array of DimensionSets`);
    } else {
      directive.Dimensions.forEach((set, s) => {
        const at = `${where}.Dimensions[${s}]`;
        if (!Array.isArray(set)) {
          errors.push(`${at} is not an array`);
          return;
        }
        if (set.length > LIMITS.dimensionsPerSet) errors.push(`${at} has ${set.length} dimensions, over ${LIMITS.dimensionsPerSet}`);
        if (new Set(set).size !== set.length) errors.push(`${at} names a dimension twice`);
        for (const name of set) {
          if (typeof name !== 'string' || name.length < 1 || name.length > LIMITS.dimensionNameChars) {
            errors.push(`${at}: ${JSON.stringify(name)} is not a dimension name`);
            continue;
          }
          dimensionNames.add(name);
          const value = root[name];
          if (value === undefined) errors.push(`${at}: no target member "${name}"`);
          else if (typeof value !== 'string') errors.push(`${at}: the dimension "${name}" is not a string`);
          else if (value.length > LIMITS.dimensionValueChars || value.trim() === '')
            errors.push(`${at}: the dimension "${name}" is empty or over ${LIMITS.dimensionValueChars} characters`);
        }
      });
    }
    if (!Array.isArray(directive.Metrics)) {
      errors.push(`${where}.Metrics is not an array of MetricDefinitions`);
      return;
    }
    if (directive.Metrics.length > LIMITS.metricsPerDirective)
      errors.push(`${where}.Metrics has ${directive.Metrics.length} metrics, over ${LIMITS.metricsPerDirective}`);
    const metricNames = new Set();
    directive.Metrics.forEach((metric, m) => {
      const at = `${where}.Metrics[${m}]`;
      if (!isObject(metric)) {
        errors.push(`${at} is not an object`);
        return;
      }
      extraMembers(metric, ['Name', 'Unit', 'StorageResolution'], at, errors);
      const name = metric.Name;
      if (typeof name !== 'string' || name.length < 1 || name.length > LIMITS.metricNameChars) {
        errors.push(`${at}.Name is not a string of 1 to ${LIMITS.metricNameChars} characters`);
        return;
      }
      if (metricNames.has(name)) errors.push(`${at}: "${name}" is defined twice`);
      metricNames.add(name);
      if (dimensionNames.has(name)) errors.push(`${at}: "${name}" is a dimension too`);
      if ('Unit' in metric && !UNITS.has(metric.Unit)) errors.push(`${at}.Unit ${JSON.stringify(metric.Unit)} is not a CloudWatch unit`);
      if ('StorageResolution' in metric && metric.StorageResolution !== 1 && metric.StorageResolution !== 60)
        errors.push(`${at}.StorageResolution is neither 1 nor 60`);
      const value = root[name];
      if (value === undefined) errors.push(`${at}: no target member "${name}"`);
      else if (isNumber(value)) checkValue(value, `"${name}"`, errors);
      else if (Array.isArray(value)) {
        if (value.length === 0) errors.push(`"${name}" is an array with no value`);
        if (value.length > LIMITS.valuesPerMember) errors.push(`"${name}" has ${value.length} values, over ${LIMITS.valuesPerMember}`);
        value.forEach((v, i) => {
          if (!isNumber(v)) errors.push(`"${name}"[${i}] is not a number`);
          else checkValue(v, `"${name}"[${i}]`, errors);
        });
      } else errors.push(`"${name}" is neither a number nor an array of numbers`);
    });
  });
  return errors;
}
