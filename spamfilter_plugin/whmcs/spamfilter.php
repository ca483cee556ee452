<?php
/**
 * spamfilter-plugin: a WHMCS provisioning module that sells inbound spam filtering.
 *
 * Installed by `spamfilter install-whmcs WHMCS_ROOT` into modules/servers/spamfilter/.
 * Written from WHMCS's provisioning-module documentation (developers.whmcs.com:
 * provisioning-modules, module-parameters, meta-data-params, single-sign-on, server-sync)
 * and relying only on what it gives a module: the module functions, their $params and
 * logModuleCall(). It needs PHP 8.1 with its json and openssl extensions (no curl).
 *
 * Every action is one call to the plugin's JSON API (/api/v1) on the server that WHMCS's
 * server record names: serverhostname (or serverip) and serverport, over HTTPS when
 * "Secure" is ticked (plain HTTP only to a loopback address), under the path in the
 * server's username field (the console's path behind a proxy; empty: the root), with the
 * API token in the server's password field. A change answers "success" only once the API has answered 202
 * (the change is durably in the plugin's queue) or 200; anything else is the API's own
 * message. The token never leaves the Authorization header: it is in no URL and, through
 * logModuleCall's replace list, in no module log.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

/** Seconds a call to the API may take, connection included. */
const SPAMFILTER_TIMEOUT = 30;
/** Seconds a creation with default settings waits for the vendors to hold the domain. */
const SPAMFILTER_SETTLE = 30;

function spamfilter_MetaData()
{
    return [
        'DisplayName' => 'Spam filtering (spamfilter-plugin)',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultNonSSLPort' => '8025',
        'DefaultSSLPort' => '443',
        'ServiceSingleSignOnLabel' => 'Open spam filter settings',
        'ListAccountsUniqueIdentifierDisplayName' => 'Domain',
        'ListAccountsUniqueIdentifierField' => 'domain',
        'ListAccountsProductField' => 'configoption1',
    ];
}

function spamfilter_ConfigOptions()
{
    return [
        'Vendors' => [
            'Type' => 'text',
            'Size' => '40',
            'Default' => '',
            'Description' => 'Vendors that filter this product\'s domains, comma-separated '
                . '(spamport, spamwall, spambarrier); empty: every vendor the plugin enables',
        ],
        'Destination' => [
            'Type' => 'text',
            'Size' => '40',
            'Default' => '',
            'Description' => 'For mail hosted elsewhere: the host that receives the domain\'s '
                . 'clean mail. Empty: the domain must be on a panel the plugin serves',
        ],
        'Default settings' => [
            'Type' => 'textarea',
            'Rows' => '4',
            'Cols' => '60',
            'Default' => '',
            'Description' => 'JSON: per vendor form, the fields set when the service is '
                . 'created, e.g. {"spamport/domain": {"action": "save", "spamscore": "high"}}',
        ],
    ];
}

/** The API's base URL for $params' server, or an error message. */
function spamfilter_base(array $params): array
{
    $host = trim((string) ($params['serverhostname'] ?? ''));
    if ($host === '') {
        $host = trim((string) ($params['serverip'] ?? ''));
    }
    if ($host === '') {
        return [null, 'The server has no hostname or IP address: set one on the server '
            . '(Setup > Servers)'];
    }
    $secure = !empty($params['serversecure']) && $params['serversecure'] !== 'off';
    $port = (int) ($params['serverport'] ?? 0);
    if ($port <= 0) {
        $port = $secure ? 443 : 8025;
    }
    $bare = trim($host, '[]');
    $loopback = $bare === 'localhost' || $bare === '::1' || str_starts_with($bare, '127.');
    if (!$secure && !$loopback) {
        return [null, "The server {$host} is reached over plain HTTP: tick \"Secure\" on the "
            . 'server so the token travels over HTTPS (plain HTTP is for a loopback address only)'];
    }
    if (str_contains($bare, ':')) {
        $host = "[{$bare}]";
    }
    // the server's Username: the path the console is served under behind a proxy
    $prefix = trim((string) ($params['serverusername'] ?? ''), " /");
    if ($prefix !== '' && !preg_match('#^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$#', $prefix)) {
        return [null, "The server's Username is the console's path (such as /spamfilter), "
            . 'or empty when the console is at the root: letters, digits, . _ ~ - and /'];
    }
    $path = $prefix === '' ? '/' : "/{$prefix}/";
    return [($secure ? 'https' : 'http') . "://{$host}:{$port}{$path}api/v1/", null];
}

/**
 * One call to the API: ['status' => HTTP status (0: none), 'body' => decoded JSON or null,
 * 'error' => a message for people, or null when the status is 2xx].
 */
function spamfilter_call(array $params, string $action, string $method, string $path,
                         ?array $body = null, array $query = []): array
{
    [$base, $problem] = spamfilter_base($params);
    $token = (string) ($params['serverpassword'] ?? '');
    if ($problem !== null) {
        return ['status' => 0, 'body' => null, 'error' => $problem];
    }
    if ($token === '') {
        return ['status' => 0, 'body' => null, 'error' => 'The server has no API token: put '
            . 'one made with "spamfilter token create NAME --role admin" in its password field'];
    }
    $url = $base . $path . ($query ? '?' . http_build_query($query) : '');
    $payload = $body === null ? '' : json_encode($body, JSON_UNESCAPED_SLASHES);
    $headers = ['Accept: application/json', 'Authorization: Bearer ' . $token];
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
    }
    $context = stream_context_create([
        'http' => [
            'method' => $method,
            'header' => implode("\r\n", $headers),
            'content' => $payload,
            'timeout' => SPAMFILTER_TIMEOUT + (float) ($query['wait'] ?? 0),
            'ignore_errors' => true,
            'follow_location' => 0,
        ],
        'ssl' => ['verify_peer' => true, 'verify_peer_name' => true],
    ]);
    $raw = @file_get_contents($url, false, $context);
    $seen = function_exists('http_get_last_response_headers')
        ? (http_get_last_response_headers() ?? [])
        : ($http_response_header ?? []);
    $status = 0;
    if ($seen && preg_match('#^HTTP/\S+\s+(\d{3})#', $seen[0], $m)) {
        $status = (int) $m[1];
    }
    $decoded = is_string($raw) && $raw !== '' ? json_decode($raw, true) : null;
    $error = null;
    if ($raw === false || $status === 0) {
        $why = error_get_last()['message'] ?? 'no answer';
        $error = "The spam filter's API at {$base} could not be reached: {$why}";
    } elseif ($status < 200 || $status > 299) {
        $error = spamfilter_problem($status, $decoded, $base);
    }
    logModuleCall('spamfilter', $action, "{$method} {$url}\n{$payload}", (string) $raw,
                  ['status' => $status, 'error' => $error], [$token]);
    return ['status' => $status, 'body' => is_array($decoded) ? $decoded : null,
            'error' => $error];
}

/** An API problem (RFC 9457) in a sentence, with each invalid field. */
function spamfilter_problem(int $status, $doc, string $base): string
{
    if (!is_array($doc)) {
        return "{$base} answered HTTP {$status}, not the spam filter's API: check the "
            . "server's hostname, port and Username (the console's path)";
    }
    $said = (string) ($doc['detail'] ?? $doc['title'] ?? "HTTP {$status}");
    if ($status === 422 && !empty($doc['errors']) && is_array($doc['errors'])) {
        $said = implode('; ', array_map(
            fn ($e) => ($e['field'] ?? '?') . ': ' . ($e['message'] ?? ''),
            $doc['errors']
        ));
    }
    return "The spam filter refused ({$status}): {$said}";
}

function spamfilter_domain(array $params): string
{
    return strtolower(trim((string) ($params['domain'] ?? ''), " \t\n\r\0\x0B."));
}

/** The product's vendors and destination, as a protect call's body. */
function spamfilter_product(array $params): array
{
    $body = [];
    $vendors = array_values(array_filter(array_map('trim',
        explode(',', (string) ($params['configoption1'] ?? '')))));
    if ($vendors) {
        $body['vendors'] = $vendors;
    }
    $destination = trim((string) ($params['configoption2'] ?? ''));
    if ($destination !== '') {
        $body['destination'] = $destination;
        // the console user a login link logs in as: this WHMCS client
        $client = (int) ($params['userid'] ?? $params['clientsdetails']['userid'] ?? 0);
        if ($client > 0) {
            $body['owner'] = "whmcs-client-{$client}";
        }
    }
    return $body;
}

/** "success" once the API accepted a change to the service's domain; else its message. */
function spamfilter_change(array $params, string $action, string $verb,
                           ?array $body = null, array $query = []): string
{
    $domain = spamfilter_domain($params);
    if ($domain === '') {
        return 'The service has no domain: set its domain, then run the action again';
    }
    $answer = spamfilter_call($params, $action, 'POST',
                              'domains/' . rawurlencode($domain) . '/' . $verb, $body, $query);
    if ($answer['error'] !== null) {
        return $answer['error'];
    }
    if (!in_array($answer['status'], [200, 202], true) || !isset($answer['body']['rows'])) {
        return "The spam filter's API answered HTTP {$answer['status']} without its rows";
    }
    return 'success';
}

function spamfilter_TestConnection(array $params)
{
    $answer = spamfilter_call($params, 'TestConnection', 'GET', 'queue', null, ['limit' => 1]);
    if ($answer['status'] === 403) {
        return ['success' => false, 'error' => 'The token works but is not an admin token: '
            . 'make one with "spamfilter token create NAME --role admin"'];
    }
    if ($answer['error'] !== null) {
        return ['success' => false, 'error' => $answer['error']];
    }
    return ['success' => true, 'error' => ''];
}

function spamfilter_CreateAccount(array $params)
{
    $defaults = trim((string) ($params['configoption3'] ?? ''));
    $settings = [];
    if ($defaults !== '') {
        $settings = json_decode($defaults, true);
        if (!is_array($settings)) {
            return 'The product\'s "Default settings" is not a JSON object: fix it in the '
                . 'product\'s Module Settings';
        }
    }
    $query = $settings ? ['wait' => SPAMFILTER_SETTLE] : [];
    $done = spamfilter_change($params, 'CreateAccount', 'protect', spamfilter_product($params)
                              ?: null, $query);
    if ($done !== 'success') {
        return $done;
    }
    $domain = rawurlencode(spamfilter_domain($params));
    foreach ($settings as $form => $fields) {
        if (!is_array($fields) || substr_count((string) $form, '/') !== 1) {
            return "Default settings: {$form} must be \"vendor/form\" with an object of fields";
        }
        $answer = spamfilter_call($params, 'CreateAccount', 'POST',
                                  "settings/domain/{$domain}/{$form}", $fields);
        if ($answer['error'] !== null) {
            return "Protected, but the default settings of {$form} were not set: "
                . $answer['error'];
        }
    }
    return 'success';
}

function spamfilter_SuspendAccount(array $params)
{
    $reason = trim((string) ($params['suspendreason'] ?? ''));
    return spamfilter_change($params, 'SuspendAccount', 'suspend',
                             $reason === '' ? null : ['reason' => preg_replace('/^(.{0,200}).*$/us', '$1', $reason)]);
}

function spamfilter_UnsuspendAccount(array $params)
{
    return spamfilter_change($params, 'UnsuspendAccount', 'unsuspend');
}

function spamfilter_TerminateAccount(array $params)
{
    return spamfilter_change($params, 'TerminateAccount', 'unprotect');
}

function spamfilter_ChangePackage(array $params)
{
    return spamfilter_change($params, 'ChangePackage', 'protect',
                             spamfilter_product($params) ?: null);
}

/** The service's domain as the API gives it, or an error message. */
function spamfilter_state(array $params, string $action): array
{
    $domain = spamfilter_domain($params);
    if ($domain === '') {
        return [null, 'The service has no domain'];
    }
    $answer = spamfilter_call($params, $action, 'GET', 'domains/' . rawurlencode($domain));
    return [$answer['body'], $answer['error']];
}

function spamfilter_e($text): string
{
    return htmlspecialchars((string) $text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function spamfilter_AdminServicesTabFields(array $params)
{
    [$doc, $error] = spamfilter_state($params, 'AdminServicesTabFields');
    if ($error !== null) {
        return ['Spam filtering' => spamfilter_e($error)];
    }
    $lines = [];
    foreach ($doc['vendors'] ?? [] as $vendor => $state) {
        $detail = empty($state['detail']) ? '' : ': ' . $state['detail'];
        $lines[] = '<strong>' . spamfilter_e($vendor) . '</strong> ' . spamfilter_e($state['state']
            . $detail);
    }
    $mx = is_array($doc['mx'] ?? null) ? ($doc['mx']['state'] ?? 'unknown') : 'not managed';
    $fields = [
        'Spam filtering' => implode('<br>', $lines) ?: 'no vendor filters domains',
        'MX records' => spamfilter_e($mx),
    ];
    if (!empty($doc['suspended'])) {
        $fields['Suspended'] = spamfilter_e($doc['suspended']['reason'] ?? 'yes');
    }
    if (!empty($doc['api'])) {
        $fields['Mail goes to'] = spamfilter_e($doc['api']['destination']);
    }
    return $fields;
}

function spamfilter_ClientArea(array $params)
{
    [$doc, $error] = spamfilter_state($params, 'ClientArea');
    $states = [];
    foreach ($doc['vendors'] ?? [] as $vendor => $state) {
        $states[] = ['vendor' => $vendor, 'state' => $state['state']];
    }
    $link = null;
    if ($error === null) {
        $answer = spamfilter_call($params, 'ClientArea', 'POST', 'domains/'
                                  . rawurlencode(spamfilter_domain($params)) . '/login-link');
        $link = $answer['body']['url'] ?? null;
    }
    return [
        'tabOverviewReplacementTemplate' => 'templates/overview.tpl',
        'templateVariables' => [
            'spamfilterDomain' => $doc['name'] ?? spamfilter_domain($params),
            'spamfilterStates' => $states,
            'spamfilterError' => $error === null ? null : 'The filtering status cannot be shown '
                . 'now; please try again later.',
            'spamfilterLoginUrl' => $link,
        ],
    ];
}

function spamfilter_ServiceSingleSignOn(array $params)
{
    $domain = spamfilter_domain($params);
    $answer = spamfilter_call($params, 'ServiceSingleSignOn', 'POST',
                              'domains/' . rawurlencode($domain) . '/login-link');
    if ($answer['error'] !== null || empty($answer['body']['url'])) {
        return ['success' => false, 'errorMsg' => $answer['error'] ?? 'No login link came back'];
    }
    return ['success' => true, 'redirectTo' => $answer['body']['url']];
}

/** WHMCS's service status words (its WHMCS\\Service\\Status constants where they exist). */
function spamfilter_status(bool $active): string
{
    if (class_exists('WHMCS\\Service\\Status')) {
        return $active ? \WHMCS\Service\Status::ACTIVE : \WHMCS\Service\Status::SUSPENDED;
    }
    return $active ? 'Active' : 'Suspended';
}

function spamfilter_ListAccounts(array $params)
{
    $accounts = [];
    $page = 1;
    do {
        $answer = spamfilter_call($params, 'ListAccounts', 'GET', 'domains', null,
                                  ['size' => 250, 'page' => $page]);
        if ($answer['error'] !== null) {
            return ['success' => false, 'error' => $answer['error']];
        }
        foreach ($answer['body']['domains'] ?? [] as $d) {
            $held = [];
            $since = null;
            foreach ($d['vendors'] ?? [] as $vendor => $state) {
                if ($state['state'] === 'protected') {
                    $held[] = $vendor;
                    $since = $since === null ? $state['at'] : min($since, $state['at']);
                }
            }
            if (!$held) {
                continue;
            }
            $accounts[] = [
                'email' => '',
                'username' => (string) ($d['owner'] ?? ''),
                'domain' => $d['domain'],
                'uniqueIdentifier' => $d['domain'],
                'product' => implode(',', $held),
                'primaryip' => '',
                'created' => gmdate('Y-m-d H:i:s', (int) ($since ?? time())),
                'status' => spamfilter_status(empty($d['suspended'])),
            ];
        }
        $pages = (int) ($answer['body']['pages'] ?? 1);
        $page++;
    } while ($page <= $pages);
    return ['success' => true, 'accounts' => $accounts];
}
