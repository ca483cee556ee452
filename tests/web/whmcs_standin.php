<?php
/*
 * A stand-in for what WHMCS gives a provisioning module, written from WHMCS's developer
 * documentation (provisioning-modules; module-parameters; logModuleCall): the WHMCS
 * constant that module files check, logModuleCall() masking each of its replace values in
 * what it keeps, and one module function called with the module parameters.
 *
 * Reads {"module": path, "function": "CreateAccount", "params": {...}} on stdin; writes
 * {"result": what the function returned, "log": the module log} as JSON.
 */
define('WHMCS', true);

$GLOBALS['standin_log'] = [];

function logModuleCall($module, $action, $requestString, $responseData, $processedData = '',
                       $replaceVars = [])
{
    $text = fn ($v) => is_string($v) ? $v : json_encode($v);
    $secrets = array_values(array_filter(array_map('strval', (array) $replaceVars)));
    $mask = fn ($v) => str_replace($secrets, '***', $text($v));
    $GLOBALS['standin_log'][] = [
        'module' => $module,
        'action' => $action,
        'request' => $mask($requestString),
        'response' => $mask($responseData),
        'processed' => $mask($processedData),
        // what the module handed over, before masking: it must not hold a secret either
        'given' => $text($requestString) . "\n" . $text($responseData) . "\n"
            . $text($processedData),
        'replace' => $secrets,
    ];
}

$call = json_decode(stream_get_contents(STDIN), true);
require $call['module'];
$result = call_user_func('spamfilter_' . $call['function'], $call['params'] ?? []);
echo json_encode(['result' => $result, 'log' => $GLOBALS['standin_log']]);
