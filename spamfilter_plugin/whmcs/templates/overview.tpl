{* The service's overview in the client area: each vendor's state and a login link. *}
<div class="spamfilter-overview">
  <h3>Spam filtering for {$spamfilterDomain|escape:'html'}</h3>
  {if $spamfilterError}
    <div class="alert alert-warning">{$spamfilterError|escape:'html'}</div>
  {else}
    <table class="table">
      <thead><tr><th>Filter</th><th>State</th></tr></thead>
      <tbody>
      {foreach $spamfilterStates as $s}
        <tr><td>{$s.vendor|escape:'html'}</td><td>{$s.state|escape:'html'}</td></tr>
      {/foreach}
      </tbody>
    </table>
    {if $spamfilterLoginUrl}
      <p><a class="btn btn-primary" href="{$spamfilterLoginUrl|escape:'html'}" target="_blank" rel="noopener">Open spam filter settings</a>
      <small>The link works once, for two minutes.</small></p>
    {/if}
  {/if}
</div>
