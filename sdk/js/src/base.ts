// Community base data (`base` capability): residents, places and organisations of the area.
import * as wit from "linli:platform/base@0.1.0";
import { call } from "./errors";
import { allPages } from "./pages";

export type Resident = wit.Resident;
export type ResidentQuery = wit.ResidentQuery;
export type ResidentPage = wit.ResidentPage;
export type EmergencyContact = wit.EmergencyContact;
export type Place = wit.Place;
export type Organisation = wit.Organisation;
export type House = wit.House;
export type HousePage = wit.HousePage;

export function findResidents(query: ResidentQuery, cursor: string | undefined, limit: number): ResidentPage {
  return call(() => wit.findResidents(query, cursor, limit));
}

/** Every resident matching `query`, following the pages. */
export function allResidents(query: ResidentQuery): Resident[] {
  return allPages((cursor) => findResidents(query, cursor, 500));
}

export function resident(id: string): Resident | undefined {
  return call(() => wit.getResident(id));
}

export function residentPhone(id: string): string {
  return call(() => wit.residentPhone(id));
}

export function emergencyContacts(resident: string): EmergencyContact[] {
  return call(() => wit.emergencyContacts(resident));
}

export function setEmergencyContacts(resident: string, contacts: EmergencyContact[]): void {
  call(() => wit.setEmergencyContacts(resident, contacts));
}

export function places(): Place[] {
  return call(() => wit.listPlaces());
}

export function organisations(): Organisation[] {
  return call(() => wit.listOrganisations());
}

/** Houses of `tenant` (inside the plugin's node; undefined for all of it), one page (`limit` 1..=500). */
export function houses(tenant: string | undefined, cursor: string | undefined, limit: number): HousePage {
  return call(() => wit.listHouses(tenant, cursor, limit));
}

/** Every house of `tenant`, following the pages. */
export function allHouses(tenant: string | undefined): House[] {
  return allPages((cursor) => houses(tenant, cursor, 500));
}

/** The house resident `id` lives in, if her record names one. */
export function residentHouse(id: string): House | undefined {
  return call(() => wit.residentHouse(id));
}
