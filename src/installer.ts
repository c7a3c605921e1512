// Whose the installed hook is: install.sh's or the Debian package's (installer/render-hook.sh
// pins VFWIRE_INSTALLED_BY in it), so a message about its pins names the command that renders
// them again on this host.

/** Who pinned the hook, for a message. */
export function installerName(installedBy: string | undefined): string {
  return installedBy === 'package' ? 'the vfwire package' : 'install.sh';
}

export function rerenderCommand(installedBy: string | undefined): string {
  return installedBy === 'package' ? 'dpkg-reconfigure vfwire' : 're-run install.sh';
}

/** What a hook file says installed it; a hook from before the pin is install.sh's. */
export function hookInstalledBy(hookText: string): string | undefined {
  return /^export VFWIRE_INSTALLED_BY=(\S+)$/m.exec(hookText)?.[1];
}
